//! Running two independent pieces of work at once where the target has threads.
//!
//! Loading a model folder is mostly converting and copying weights, one component after
//! another on one core; its big components (the UNet, CLIP ViT-H, the ConsistentID checkpoint)
//! are independent, so they load side by side. The browser (wasm32) has no threads here: the
//! same calls run one after the other.

/// Runs `a` and `b`, on two threads where the target has them, and returns both results.
/// A panic in either is resumed on the caller's thread, as if the work had run there.
#[cfg(not(target_family = "wasm"))]
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(b);
        let first = a();
        match other.join() {
            Ok(second) => (first, second),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `a`, then `b` (no threads on this target).
#[cfg(target_family = "wasm")]
pub fn join<A, B>(a: impl FnOnce() -> A, b: impl FnOnce() -> B) -> (A, B) {
    (a(), b())
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_results_come_back_in_order() {
        let data = [1, 2, 3];
        let (sum, len) = super::join(|| data.iter().sum::<i32>(), || data.len());
        assert_eq!((sum, len), (6, 3));
    }
}
