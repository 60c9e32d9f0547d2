//! `Transformer2DModel` with `BasicTransformerBlock`s (diffusers 0.23
//! `models/transformer_2d.py`, `models/attention.py`), continuous input.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::attention::Attention;
use crate::kernels;
use crate::nn::{conv2d, group_norm};

/// Projection in/out of the transformer: 1×1 convolution, or linear (`use_linear_projection`).
#[derive(Module, Debug)]
pub enum Projection {
    Conv(Conv2d),
    Linear(Linear),
}

/// `Transformer2DModel`: group norm, projection in, transformer blocks, projection out, residual.
#[derive(Module, Debug)]
pub struct Transformer2DModel {
    pub norm: GroupNorm,
    pub proj_in: Projection,
    pub transformer_blocks: Vec<BasicTransformerBlock>,
    pub proj_out: Projection,
}

/// Dimensions of one `Transformer2DModel`.
#[derive(Debug, Clone, Copy)]
pub struct Transformer2DConfig {
    pub heads: usize,
    pub dim_head: usize,
    pub in_channels: usize,
    pub layers: usize,
    pub cross_attention_dim: usize,
    pub groups: usize,
    pub use_linear_projection: bool,
}

impl Transformer2DConfig {
    pub fn init(&self, device: &Device) -> Transformer2DModel {
        let inner = self.heads * self.dim_head;
        let c = self.in_channels;
        let proj = |i, o| {
            if self.use_linear_projection {
                Projection::Linear(LinearConfig::new(i, o).init(device))
            } else {
                Projection::Conv(conv2d(i, o, 1, device))
            }
        };
        Transformer2DModel {
            norm: group_norm(self.groups, c, 1e-6, device),
            proj_in: proj(c, inner),
            transformer_blocks: (0..self.layers)
                .map(|_| {
                    BasicTransformerBlock::new(
                        inner,
                        self.heads,
                        self.dim_head,
                        self.cross_attention_dim,
                        device,
                    )
                })
                .collect(),
            proj_out: proj(inner, c),
        }
    }
}

impl Transformer2DModel {
    /// # Shapes
    /// - `x`: `[b, c, h, w]`, `context`: `[b, m, cross_attention_dim]` → `[b, c, h, w]`
    pub fn forward(&self, x: Tensor<4>, context: Tensor<3>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let residual = x.clone();
        let x = kernels::group_norm(&self.norm, x, false);
        // [b, ch, h, w] -> [b, h*w, ch], projecting before (conv) or after (linear).
        let to_seq = |t: Tensor<4>| {
            let ch = t.dims()[1];
            t.reshape([b, ch, h * w]).swap_dims(1, 2)
        };
        let mut seq = match &self.proj_in {
            Projection::Conv(conv) => to_seq(conv.forward(x)),
            Projection::Linear(linear) => linear.forward(to_seq(x)),
        };
        for block in &self.transformer_blocks {
            seq = block.forward(seq, context.clone());
        }
        // [b, h*w, ch] -> [b, ch, h, w]
        let to_map = |t: Tensor<3>| {
            let ch = t.dims()[2];
            t.swap_dims(1, 2).reshape([b, ch, h, w])
        };
        let out = match &self.proj_out {
            Projection::Conv(conv) => conv.forward(to_map(seq)),
            Projection::Linear(linear) => to_map(linear.forward(seq)),
        };
        debug_assert_eq!(out.dims()[1], c);
        out + residual
    }
}

/// `BasicTransformerBlock`: self-attention, cross-attention, GEGLU feed-forward (pre-LN).
#[derive(Module, Debug)]
pub struct BasicTransformerBlock {
    pub norm1: LayerNorm,
    pub attn1: Attention,
    pub norm2: LayerNorm,
    pub attn2: Attention,
    pub norm3: LayerNorm,
    pub ff: FeedForward,
}

impl BasicTransformerBlock {
    pub fn new(
        dim: usize,
        heads: usize,
        dim_head: usize,
        cross_dim: usize,
        device: &Device,
    ) -> Self {
        let ln = || LayerNormConfig::new(dim).init(device);
        Self {
            norm1: ln(),
            attn1: Attention::new(dim, None, heads, dim_head, device),
            norm2: ln(),
            attn2: Attention::new(dim, Some(cross_dim), heads, dim_head, device),
            norm3: ln(),
            ff: FeedForward::new(dim, device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, n, dim]`, `context`: `[b, m, cross_dim]` → `[b, n, dim]`
    pub fn forward(&self, x: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(context))
            + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// `FeedForward` with GEGLU; upstream `ff.net.0.proj` / `ff.net.2` are `net_0.proj` / `net_2`.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub net_0: Geglu,
    pub net_2: Linear,
}

impl FeedForward {
    pub fn new(dim: usize, device: &Device) -> Self {
        let inner = 4 * dim;
        Self {
            net_0: Geglu {
                proj: LinearConfig::new(dim, 2 * inner).init(device),
            },
            net_2: LinearConfig::new(inner, dim).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, n, dim]` → same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.net_2.forward(self.net_0.forward(x))
    }
}

/// `GEGLU`: a projection to twice the width, split into value and GELU gate.
#[derive(Module, Debug)]
pub struct Geglu {
    pub proj: Linear,
}

impl Geglu {
    /// # Shapes
    /// - `x`: `[b, n, dim]` → `[b, n, inner]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.proj.forward(x);
        let [b, n, two] = h.dims();
        let value = h.clone().slice([0..b, 0..n, 0..two / 2]);
        let gate = h.slice([0..b, 0..n, two / 2..two]);
        value * gelu(gate)
    }
}
