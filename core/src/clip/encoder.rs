//! The CLIP transformer encoder shared by the text and vision towers (transformers
//! `CLIPEncoder`): pre-LN layers of multi-head self-attention (causal for text) and an MLP.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Tensor};

use super::config::{ClipTextConfig, ClipVisionConfig, HiddenAct};

/// The encoder's dimensions, from either tower's config.
pub struct EncoderDims {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub layers: usize,
    pub act: HiddenAct,
    pub eps: f64,
}

impl From<&ClipTextConfig> for EncoderDims {
    fn from(c: &ClipTextConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            act: c.hidden_act,
            eps: c.layer_norm_eps,
        }
    }
}

impl From<&ClipVisionConfig> for EncoderDims {
    fn from(c: &ClipVisionConfig) -> Self {
        Self {
            hidden: c.hidden_size,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            act: c.hidden_act,
            eps: c.layer_norm_eps,
        }
    }
}

/// `CLIPEncoder`: the stack of layers.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
    /// Causal self-attention (the text tower).
    #[module(skip)]
    pub causal: bool,
}

impl ClipEncoder {
    pub fn new(dims: &EncoderDims, causal: bool, device: &Device) -> Self {
        Self {
            layers: (0..dims.layers)
                .map(|_| ClipEncoderLayer::new(dims, device))
                .collect(),
            causal,
        }
    }

    /// Runs every layer; returns transformers' `hidden_states`: the input, then each layer's
    /// output (`layers + 1` tensors).
    ///
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → each state the same
    pub fn forward(&self, x: Tensor<3>) -> Vec<Tensor<3>> {
        let mut states = Vec::with_capacity(self.layers.len() + 1);
        let mut x = x;
        states.push(x.clone());
        for layer in &self.layers {
            x = layer.forward(x, self.causal);
            states.push(x.clone());
        }
        states
    }
}

/// `CLIPEncoderLayer`: pre-LN attention and MLP blocks with residuals.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub self_attn: ClipAttention,
    pub layer_norm1: LayerNorm,
    pub mlp: ClipMlp,
    pub layer_norm2: LayerNorm,
}

impl ClipEncoderLayer {
    fn new(dims: &EncoderDims, device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let h = dims.hidden;
        Self {
            self_attn: ClipAttention {
                q_proj: linear(h, h),
                k_proj: linear(h, h),
                v_proj: linear(h, h),
                out_proj: linear(h, h),
                num_heads: dims.heads,
            },
            layer_norm1: layer_norm(h, dims.eps, device),
            mlp: ClipMlp {
                fc1: linear(h, dims.intermediate),
                fc2: linear(dims.intermediate, h),
                act: dims.act,
            },
            layer_norm2: layer_norm(h, dims.eps, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), causal);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

/// `CLIPAttention`: multi-head self-attention with separate q/k/v/out projections.
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub num_heads: usize,
}

impl ClipAttention {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let heads = self.num_heads;
        // [b, s, h] -> [b, heads, s, h / heads]
        let split = |t: Tensor<3>| t.reshape([b, s, heads, h / heads]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let options = AttentionModuleOptions {
            is_causal: causal,
            ..Default::default()
        };
        let out = attention(q, k, v, None, None, options);
        // [b, heads, s, d] -> [b, s, h]
        self.out_proj
            .forward(out.swap_dims(1, 2).reshape([b, s, h]))
    }
}

/// `CLIPMLP`: fc1 → activation → fc2.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub act: HiddenAct,
}

impl ClipMlp {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.fc1.forward(x);
        let x = match self.act {
            HiddenAct::QuickGelu => x.clone() * sigmoid(x * 1.702),
            HiddenAct::Gelu => gelu(x),
            HiddenAct::GeluTanh => gelu_approximate(x),
        };
        self.fc2.forward(x)
    }
}

pub fn layer_norm(size: usize, eps: f64, device: &Device) -> LayerNorm {
    LayerNormConfig::new(size).with_epsilon(eps).init(device)
}
