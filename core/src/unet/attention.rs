//! diffusers `Attention` as the UNet's transformer blocks use it (self- or cross-attention,
//! no q/k/v bias), with its processor chosen from a closed set.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::nn::attention::multi_head_attention;

/// `Attention(query_dim, cross_attention_dim, heads, dim_head)`; `to_out.0` upstream is `to_out`.
#[derive(Module, Debug)]
pub struct Attention {
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl Attention {
    /// `context_dim` is the width of the keys/values' source (`None`: self-attention).
    pub fn new(
        query_dim: usize,
        context_dim: Option<usize>,
        heads: usize,
        dim_head: usize,
        device: &Device,
    ) -> Self {
        let inner = heads * dim_head;
        let kv = context_dim.unwrap_or(query_dim);
        let no_bias = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            to_q: no_bias(query_dim, inner),
            to_k: no_bias(kv, inner),
            to_v: no_bias(kv, inner),
            to_out: LinearConfig::new(inner, query_dim).init(device),
            heads,
        }
    }

    /// # Shapes
    /// - `x`: `[b, n, query_dim]`, `context`: `[b, m, context_dim]` (or `None` for self-attention)
    ///   → `[b, n, query_dim]`
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        let q = self.to_q.forward(x);
        let k = self.to_k.forward(context.clone());
        let v = self.to_v.forward(context);
        self.to_out
            .forward(multi_head_attention(q, k, v, self.heads))
    }
}
