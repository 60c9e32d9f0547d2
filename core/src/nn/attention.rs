//! Scaled dot-product attention over `[batch, seq, heads * head_dim]` projections.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use crate::kernels;

/// `[b, len, heads * d]` → `[b, heads, len, d]`.
fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, len, inner] = x.dims();
    x.reshape([b, len, heads, inner / heads]).swap_dims(1, 2)
}

/// `[b, heads, len, d]` → `[b, len, heads * d]`.
fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, heads, len, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, len, heads * d])
}

/// Splits q/k/v into `heads`, attends with scale `1/sqrt(head_dim)`, and merges the heads.
///
/// # Shapes
/// - `q`: `[b, n, heads * d]`, `k`/`v`: `[b, m, heads * d]` → `[b, n, heads * d]`
pub fn multi_head_attention(q: Tensor<3>, k: Tensor<3>, v: Tensor<3>, heads: usize) -> Tensor<3> {
    merge_heads(kernels::attention(
        split_heads(q, heads),
        split_heads(k, heads),
        split_heads(v, heads),
    ))
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
    let d = q.dims()[2] / heads;
    let scores = split_heads(q, heads)
        .matmul(split_heads(k, heads).swap_dims(2, 3))
        .mul_scalar((d as f64).powf(-0.5));
    let probs = softmax(scores, 3);
    let out = probs.clone().matmul(split_heads(v, heads));
    (merge_heads(out), probs)
}
