//! Scaled dot-product attention over `[batch, seq, heads * head_dim]` projections.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use crate::kernels;

/// Splits q/k/v into `heads`, attends with scale `1/sqrt(head_dim)`, and merges the heads.
///
/// # Shapes
/// - `q`: `[b, n, heads * d]`, `k`/`v`: `[b, m, heads * d]` → `[b, n, heads * d]`
pub fn multi_head_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, inner] = q.dims();
    let m = k.dims()[1];
    let d = inner / heads;
    // [b, n, heads * d] -> [b, heads, n, d]
    let q = q.reshape([b, n, heads, d]).swap_dims(1, 2);
    let k = k.reshape([b, m, heads, d]).swap_dims(1, 2);
    let v = v.reshape([b, m, heads, d]).swap_dims(1, 2);
    let out = kernels::attention(q, k, v);
    // [b, heads, n, d] -> [b, n, heads * d]
    out.swap_dims(1, 2).reshape([b, n, inner])
}

/// [`multi_head_attention`] with the probabilities made explicit, `softmax(q·kᵀ/√d)`, and
/// returned (training's localization loss supervises them). The same attention, computed the
/// way diffusers' `get_attention_scores` does.
///
/// # Shapes
/// - `q`: `[b, n, heads * d]`, `k`/`v`: `[b, m, heads * d]` → `[b, n, heads * d]` and the
///   probabilities `[b, heads, n, m]`
pub fn multi_head_attention_with_probs(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    heads: usize,
) -> (Tensor<3>, Tensor<4>) {
    let [b, n, inner] = q.dims();
    let m = k.dims()[1];
    let d = inner / heads;
    let q = q.reshape([b, n, heads, d]).swap_dims(1, 2);
    let k = k.reshape([b, m, heads, d]).swap_dims(1, 2);
    let v = v.reshape([b, m, heads, d]).swap_dims(1, 2);
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar((d as f64).powf(-0.5));
    let probs = softmax(scores, 3);
    let out = probs.clone().matmul(v);
    (out.swap_dims(1, 2).reshape([b, n, inner]), probs)
}
