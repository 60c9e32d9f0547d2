//! Waiting for a future that needs no executor: native backends complete their read-backs (and
//! wgpu its adapter queries) by themselves, so polling until ready is enough. Not for the
//! browser, where only the event loop can complete them.

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Polls `future` until it is ready, yielding the thread between polls.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}
