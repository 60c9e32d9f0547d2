//! The FacialEncoder: each region's CLIP states pooled by a single-query perceiver
//! (`AttentionMLP`), then fused into the text token before its `<|facial|>` marker
//! (`FuseModule`, FastComposer's post-fuse).

use burn::tensor::{Bool, Tensor, TensorData};

use super::params::{LayerNorm, Linear, StateDict, gelu3};
use super::perceiver::{FeedForward, PerceiverAttention, load_layers, run_layers};
use crate::{Error, Result};

/// `AttentionMLP` with one learned query.
pub struct AttentionMlp {
    latents: Tensor<3>,
    proj_in: Linear,
    proj_out: Linear,
    norm_out: LayerNorm,
    layers: Vec<(PerceiverAttention, FeedForward)>,
}

/// `MLP(in, out, hidden, residual)`: LN → fc1 → GELU → fc2 (+ input).
struct Mlp {
    layernorm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    residual: bool,
}

impl Mlp {
    fn load(sd: &mut StateDict, prefix: &str, residual: bool) -> Result<Self> {
        Ok(Self {
            layernorm: sd.layer_norm(&format!("{prefix}.layernorm"))?,
            fc1: sd.linear(&format!("{prefix}.fc1"), true)?,
            fc2: sd.linear(&format!("{prefix}.fc2"), true)?,
            residual,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self
            .fc2
            .forward(gelu3(self.fc1.forward(self.layernorm.forward(x.clone()))));
        if self.residual { y + x } else { y }
    }
}

pub struct FacialEncoder {
    visual_projection: AttentionMlp,
    mlp1: Mlp,
    mlp2: Mlp,
    layer_norm: LayerNorm,
}

impl FacialEncoder {
    /// Loads `{prefix}.*` (`FacialEncoder` in `ConsistentID-v1.bin`).
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        let v = format!("{prefix}.visual_projection");
        let latents = sd.take(&format!("{v}.latents"), 3)?;
        let latents = sd.upload::<3>(latents);
        let visual_projection = AttentionMlp {
            latents,
            proj_in: sd.linear(&format!("{v}.proj_in"), true)?,
            proj_out: sd.linear(&format!("{v}.proj_out"), true)?,
            norm_out: sd.layer_norm(&format!("{v}.norm_out"))?,
            layers: load_layers(sd, &format!("{v}.layers"))?,
        };
        let f = format!("{prefix}.fuse_module");
        Ok(Self {
            visual_projection,
            mlp1: Mlp::load(sd, &format!("{f}.mlp1"), false)?,
            mlp2: Mlp::load(sd, &format!("{f}.mlp2"), true)?,
            layer_norm: sd.layer_norm(&format!("{f}.layer_norm"))?,
        })
    }

    /// The CLIP vision width the regions are encoded with (1280).
    pub fn clip_dim(&self) -> usize {
        self.visual_projection.proj_in.inp
    }

    /// One token per region.
    ///
    /// # Shapes
    /// - `regions`: `[n, 257, 1280]` → `[n, 768]`
    pub fn region_tokens(&self, regions: Tensor<3>) -> Tensor<2> {
        let vp = &self.visual_projection;
        let [n, _, _] = regions.dims();
        let [_, q, d] = vp.latents.dims();
        let latents = vp.latents.clone().expand([n, q, d]);
        let context = vp.proj_in.forward(regions);
        let out = vp.norm_out.forward(
            vp.proj_out
                .forward(run_layers(&vp.layers, &context, latents)),
        );
        let dim = out.dims()[2];
        out.reshape([n * q, dim])
    }

    /// Fuses region tokens into the prompt embedding at the facial positions.
    ///
    /// # Shapes
    /// - `prompt_embeds`: `[1, seq, 768]`; `regions`: `[5, 257, 1280]`;
    ///   `facial_token_mask`: `seq` flags; `valid_regions`: 5 flags → `[1, seq, 768]`
    pub fn forward(
        &self,
        prompt_embeds: Tensor<3>,
        regions: Tensor<3>,
        facial_token_mask: &[bool],
        valid_regions: &[bool],
    ) -> Result<Tensor<3>> {
        let [b, seq, dim] = prompt_embeds.dims();
        let positions: Vec<usize> = (0..seq)
            .filter(|&i| facial_token_mask.get(i) == Some(&true))
            .collect();
        let valid: Vec<usize> = (0..valid_regions.len())
            .filter(|&i| valid_regions[i])
            .collect();
        if b != 1 || facial_token_mask.len() != seq || regions.dims()[0] != valid_regions.len() {
            return Err(Error::InvalidRequest(format!(
                "FacialEncoder takes one prompt of {seq} tokens with one flag each and a flag per region"
            )));
        }
        if positions.len() != valid.len() {
            return Err(Error::InvalidRequest(format!(
                "{} facial tokens in the prompt but {} valid regions",
                positions.len(),
                valid.len()
            )));
        }
        if positions.is_empty() {
            return Ok(prompt_embeds);
        }
        let device = prompt_embeds.device();
        let index = |v: &[usize]| {
            Tensor::<1, burn::tensor::Int>::from_data(
                TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [v.len()]),
                &device,
            )
        };
        let tokens = self.region_tokens(regions).select(0, index(&valid)); // [k, dim]
        let text = prompt_embeds
            .clone()
            .reshape([seq, dim])
            .select(0, index(&positions));
        let k = positions.len();
        let stacked = Tensor::cat(vec![text.clone(), tokens], 1).reshape([1, k, 2 * dim]);
        let fused = self.mlp1.forward(stacked) + text.reshape([1, k, dim]);
        let fused = self
            .layer_norm
            .forward(self.mlp2.forward(fused))
            .reshape([k, dim]);
        // Scatter: the i-th facial position takes the i-th fused row.
        let mut mask = vec![false; seq];
        let mut rows = vec![0i64; seq];
        for (i, &p) in positions.iter().enumerate() {
            mask[p] = true;
            rows[p] = i as i64;
        }
        let gathered = fused.select(
            0,
            Tensor::<1, burn::tensor::Int>::from_data(TensorData::new(rows, [seq]), &device),
        );
        let mask: Tensor<2, Bool> = Tensor::from_data(TensorData::new(mask, [seq, 1]), &device);
        let out = prompt_embeds
            .reshape([seq, dim])
            .mask_where(mask.expand([seq, dim]), gathered);
        Ok(out.reshape([1, seq, dim]))
    }
}
