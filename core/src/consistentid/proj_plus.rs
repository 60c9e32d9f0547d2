//! `ProjPlusModel` ("image_proj"): the ArcFace embedding projected to ID-token queries that a
//! perceiver resampler refines against the CLIP penultimate states → the 4 ID tokens.

use burn::module::Module;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::gelu;

use super::params::{StateDict, d_in, d_out, width};
use super::perceiver::{PerceiverLayer, load_layers, run_layers};
use crate::{Error, Result};

/// `perceiver_resampler`: IP-Adapter's `FacePerceiverResampler`.
#[derive(Module, Debug)]
pub struct PerceiverResampler {
    pub proj_in: Linear,
    pub proj_out: Linear,
    pub norm_out: LayerNorm,
    pub layers: Vec<PerceiverLayer>,
}

#[derive(Module, Debug)]
pub struct ProjPlusModel {
    /// `proj.0` (Linear), `proj.1` (GELU), `proj.2` (Linear) upstream.
    pub proj_0: Linear,
    pub proj_2: Linear,
    pub norm: LayerNorm,
    pub perceiver_resampler: PerceiverResampler,
    /// Number of ID tokens (4), from `proj.2`'s width over the token width.
    #[module(skip)]
    pub num_tokens: usize,
}

impl ProjPlusModel {
    /// Loads `{prefix}.*` (`image_proj` in `ConsistentID-v1.bin`).
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        let proj_0 = sd.linear(&format!("{prefix}.proj.0"), true)?;
        let proj_2 = sd.linear(&format!("{prefix}.proj.2"), true)?;
        let norm = sd.layer_norm(&format!("{prefix}.norm"))?;
        let r = format!("{prefix}.perceiver_resampler");
        let perceiver_resampler = PerceiverResampler {
            proj_in: sd.linear(&format!("{r}.proj_in"), true)?,
            proj_out: sd.linear(&format!("{r}.proj_out"), true)?,
            norm_out: sd.layer_norm(&format!("{r}.norm_out"))?,
            layers: load_layers(sd, &format!("{r}.layers"))?,
        };
        let dim = width(&norm);
        if d_out(&proj_0) != d_in(&proj_2)
            || !d_out(&proj_2).is_multiple_of(dim)
            || d_out(&perceiver_resampler.proj_in) != dim
        {
            return Err(sd.mismatch(format!("`{prefix}` widths do not chain")));
        }
        Ok(Self {
            num_tokens: d_out(&proj_2) / dim,
            proj_0,
            proj_2,
            norm,
            perceiver_resampler,
        })
    }

    /// The ArcFace embedding width (512).
    pub fn id_dim(&self) -> usize {
        d_in(&self.proj_0)
    }

    /// The CLIP vision width (1280).
    pub fn clip_dim(&self) -> usize {
        d_in(&self.perceiver_resampler.proj_in)
    }

    /// # Shapes
    /// - `id_embedding`: `[b, 512]`, `clip_hidden`: `[b, 257, 1280]` → `[b, 4, 768]`
    pub fn forward(&self, id_embedding: Tensor<2>, clip_hidden: Tensor<3>) -> Result<Tensor<3>> {
        let [b, d] = id_embedding.dims();
        let [b2, _, c] = clip_hidden.dims();
        if d != self.id_dim() || c != self.clip_dim() || b != b2 {
            return Err(Error::InvalidRequest(format!(
                "ID projection takes [b, {}] and [b, tokens, {}], got [{b}, {d}] and [{b2}, _, {c}]",
                self.id_dim(),
                self.clip_dim()
            )));
        }
        let x = self
            .proj_2
            .forward(gelu(self.proj_0.forward(id_embedding.reshape([b, 1, d]))));
        let dim = width(&self.norm);
        let x = self.norm.forward(x.reshape([b, self.num_tokens, dim]));
        let r = &self.perceiver_resampler;
        let context = r.proj_in.forward(clip_hidden);
        let latents = run_layers(&r.layers, &context, x);
        Ok(r.norm_out.forward(r.proj_out.forward(latents)))
    }
}
