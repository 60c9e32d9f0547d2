//! `ProjPlusModel` ("image_proj"): the ArcFace embedding projected to ID-token queries that a
//! perceiver resampler refines against the CLIP penultimate states → the 4 ID tokens.

use burn::tensor::Tensor;

use super::params::{LayerNorm, Linear, StateDict, gelu3};
use super::perceiver::{FeedForward, PerceiverAttention, load_layers, run_layers};
use crate::{Error, Result};

pub struct ProjPlusModel {
    proj_0: Linear,
    proj_2: Linear,
    norm: LayerNorm,
    proj_in: Linear,
    proj_out: Linear,
    norm_out: LayerNorm,
    layers: Vec<(PerceiverAttention, FeedForward)>,
    /// Number of ID tokens (4), from `proj.2`'s width over the token width.
    pub num_tokens: usize,
}

impl ProjPlusModel {
    /// Loads `{prefix}.*` (`image_proj` in `ConsistentID-v1.bin`).
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        let proj_0 = sd.linear(&format!("{prefix}.proj.0"), true)?;
        let proj_2 = sd.linear(&format!("{prefix}.proj.2"), true)?;
        let norm = sd.layer_norm(&format!("{prefix}.norm"))?;
        let r = format!("{prefix}.perceiver_resampler");
        let proj_in = sd.linear(&format!("{r}.proj_in"), true)?;
        let proj_out = sd.linear(&format!("{r}.proj_out"), true)?;
        let norm_out = sd.layer_norm(&format!("{r}.norm_out"))?;
        let layers = load_layers(sd, &format!("{r}.layers"))?;
        let dim = norm.size;
        if proj_0.out != proj_2.inp || !proj_2.out.is_multiple_of(dim) || proj_in.out != dim {
            return Err(sd.mismatch(format!("`{prefix}` widths do not chain")));
        }
        Ok(Self {
            num_tokens: proj_2.out / dim,
            proj_0,
            proj_2,
            norm,
            proj_in,
            proj_out,
            norm_out,
            layers,
        })
    }

    /// The ArcFace embedding width (512).
    pub fn id_dim(&self) -> usize {
        self.proj_0.inp
    }

    /// The CLIP vision width (1280).
    pub fn clip_dim(&self) -> usize {
        self.proj_in.inp
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
            .forward(gelu3(self.proj_0.forward(id_embedding.reshape([b, 1, d]))));
        let dim = self.norm.size;
        let x = self.norm.forward(x.reshape([b, self.num_tokens, dim]));
        let context = self.proj_in.forward(clip_hidden);
        let latents = run_layers(&self.layers, &context, x);
        Ok(self.norm_out.forward(self.proj_out.forward(latents)))
    }
}
