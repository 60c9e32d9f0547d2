//! The perceiver blocks shared by `ProjPlusModel` and the FacialEncoder (IP-Adapter's
//! `PerceiverAttention` and `FeedForward`).

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, softmax};

use super::params::{StateDict, d_in, d_out};
use crate::Result;

/// The official head width.
pub const DIM_HEAD: usize = 64;

/// Latents attend to the context concatenated with themselves.
#[derive(Module, Debug)]
pub struct PerceiverAttention {
    pub norm1: LayerNorm,
    pub norm2: LayerNorm,
    pub to_q: Linear,
    pub to_kv: Linear,
    pub to_out: Linear,
    #[module(skip)]
    heads: usize,
}

impl PerceiverAttention {
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        let norm1 = sd.layer_norm(&format!("{prefix}.norm1"))?;
        let norm2 = sd.layer_norm(&format!("{prefix}.norm2"))?;
        let to_q = sd.linear(&format!("{prefix}.to_q"), false)?;
        let to_kv = sd.linear(&format!("{prefix}.to_kv"), false)?;
        let to_out = sd.linear(&format!("{prefix}.to_out"), false)?;
        let inner = d_out(&to_q);
        if !inner.is_multiple_of(DIM_HEAD) || d_out(&to_kv) != 2 * inner || d_in(&to_out) != inner {
            return Err(sd.mismatch(format!(
                "`{prefix}` projections do not fit heads of {DIM_HEAD}"
            )));
        }
        Ok(Self {
            norm1,
            norm2,
            to_q,
            to_kv,
            to_out,
            heads: inner / DIM_HEAD,
        })
    }

    /// # Shapes
    /// - `x`: `[b, n1, dim]` context, `latents`: `[b, n2, dim]` → `[b, n2, dim]` (no residual)
    pub fn forward(&self, x: Tensor<3>, latents: Tensor<3>) -> Tensor<3> {
        let x = self.norm1.forward(x);
        let latents = self.norm2.forward(latents);
        let [b, n2, _] = latents.dims();
        let q = self.to_q.forward(latents.clone());
        let kv = self.to_kv.forward(Tensor::cat(vec![x, latents], 1));
        let [_, n, two_inner] = kv.dims();
        let inner = two_inner / 2;
        let k = kv.clone().slice([0..b, 0..n, 0..inner]);
        let v = kv.slice([0..b, 0..n, inner..two_inner]);
        let h = self.heads;
        let split = |t: Tensor<3>, len: usize| t.reshape([b, len, h, DIM_HEAD]).swap_dims(1, 2);
        let (q, k, v) = (split(q, n2), split(k, n), split(v, n));
        // Upstream scales q and k by 64^(-1/4) each; the product is the usual 1/8.
        let scale = (DIM_HEAD as f64).powf(-0.25);
        let weights = softmax(
            q.mul_scalar(scale)
                .matmul(k.mul_scalar(scale).swap_dims(2, 3)),
            3,
        );
        let out = weights.matmul(v).swap_dims(1, 2).reshape([b, n2, inner]);
        self.to_out.forward(out)
    }
}

/// `FeedForward`: LN → Linear (×mult, no bias) → GELU → Linear (no bias); keys `.0 .1 .3`.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub norm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

impl FeedForward {
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        Ok(Self {
            norm: sd.layer_norm(&format!("{prefix}.0"))?,
            fc1: sd.linear(&format!("{prefix}.1"), false)?,
            fc2: sd.linear(&format!("{prefix}.3"), false)?,
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.fc2
            .forward(gelu(self.fc1.forward(self.norm.forward(x))))
    }
}

/// `layers.{i}`: a `PerceiverAttention` (`.0`) and a `FeedForward` (`.1`), each with a residual.
#[derive(Module, Debug)]
pub struct PerceiverLayer {
    pub attn: PerceiverAttention,
    pub ff: FeedForward,
}

/// `layers.{i}` = [PerceiverAttention, FeedForward] with residuals, for every `i` present.
pub fn load_layers(sd: &mut StateDict, prefix: &str) -> Result<Vec<PerceiverLayer>> {
    let mut layers = Vec::new();
    while sd
        .tensors
        .contains_key(&format!("{prefix}.{}.0.to_q.weight", layers.len()))
    {
        let p = format!("{prefix}.{}", layers.len());
        layers.push(PerceiverLayer {
            attn: PerceiverAttention::load(sd, &format!("{p}.0"))?,
            ff: FeedForward::load(sd, &format!("{p}.1"))?,
        });
    }
    if layers.is_empty() {
        return Err(sd.mismatch(format!("no `{prefix}.*` layers")));
    }
    Ok(layers)
}

/// Runs the perceiver stack on `latents` with context `x`.
pub fn run_layers(layers: &[PerceiverLayer], x: &Tensor<3>, latents: Tensor<3>) -> Tensor<3> {
    let mut latents = latents;
    for layer in layers {
        latents = layer.attn.forward(x.clone(), latents.clone()) + latents;
        latents = layer.ff.forward(latents.clone()) + latents;
    }
    latents
}
