//! The FacialEncoder: each region's CLIP states pooled by a single-query perceiver
//! (`AttentionMLP`), then fused into the text token before its `<|facial|>` marker
//! (`FuseModule`, FastComposer's post-fuse).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::gelu;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::params::{StateDict, d_in};
use super::perceiver::{PerceiverLayer, load_layers, run_layers};
use crate::{Error, Result};

/// `AttentionMLP` with one learned query.
#[derive(Module, Debug)]
pub struct AttentionMlp {
    pub latents: Param<Tensor<3>>,
    pub proj_in: Linear,
    pub proj_out: Linear,
    pub norm_out: LayerNorm,
    pub layers: Vec<PerceiverLayer>,
}

/// `MLP(in, out, hidden, residual)`: LN → fc1 → GELU → fc2 (+ input).
#[derive(Module, Debug)]
pub struct Mlp {
    pub layernorm: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
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
            .forward(gelu(self.fc1.forward(self.layernorm.forward(x.clone()))));
        if self.residual { y + x } else { y }
    }
}

/// `FuseModule`: a facial token's text embedding and its region token → the fused embedding.
#[derive(Module, Debug)]
pub struct FuseModule {
    pub mlp1: Mlp,
    pub mlp2: Mlp,
    pub layer_norm: LayerNorm,
}

impl FuseModule {
    /// # Shapes
    /// - `text`, `tokens`: `[k, dim]` → `[k, dim]`
    fn forward(&self, text: Tensor<2>, tokens: Tensor<2>) -> Tensor<2> {
        let [k, dim] = text.dims();
        let stacked = Tensor::cat(vec![text.clone(), tokens], 1).reshape([1, k, 2 * dim]);
        let fused = self.mlp1.forward(stacked) + text.reshape([1, k, dim]);
        self.layer_norm
            .forward(self.mlp2.forward(fused))
            .reshape([k, dim])
    }
}

#[derive(Module, Debug)]
pub struct FacialEncoder {
    pub visual_projection: AttentionMlp,
    pub fuse_module: FuseModule,
}

impl FacialEncoder {
    /// Loads `{prefix}.*` (`FacialEncoder` in `ConsistentID-v1.bin`).
    pub fn load(sd: &mut StateDict, prefix: &str) -> Result<Self> {
        let v = format!("{prefix}.visual_projection");
        let latents = sd.take(&format!("{v}.latents"), 3)?;
        let latents = Param::from_tensor(sd.upload::<3>(latents));
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
            fuse_module: FuseModule {
                mlp1: Mlp::load(sd, &format!("{f}.mlp1"), false)?,
                mlp2: Mlp::load(sd, &format!("{f}.mlp2"), true)?,
                layer_norm: sd.layer_norm(&format!("{f}.layer_norm"))?,
            },
        })
    }

    /// The CLIP vision width the regions are encoded with (1280).
    pub fn clip_dim(&self) -> usize {
        d_in(&self.visual_projection.proj_in)
    }

    /// One token per region.
    ///
    /// # Shapes
    /// - `regions`: `[n, 257, 1280]` → `[n, 768]`
    pub fn region_tokens(&self, regions: Tensor<3>) -> Tensor<2> {
        let vp = &self.visual_projection;
        let [n, _, _] = regions.dims();
        let [_, q, d] = vp.latents.dims();
        let latents = vp.latents.val().expand([n, q, d]);
        let context = vp.proj_in.forward(regions);
        let out = vp.norm_out.forward(
            vp.proj_out
                .forward(run_layers(&vp.layers, &context, latents)),
        );
        let dim = out.dims()[2];
        out.reshape([n * q, dim])
    }

    /// Fuses region tokens into the prompt embeddings at the facial positions. As upstream,
    /// the flagged tokens of the whole batch (in batch then sequence order) take the valid
    /// regions of the whole batch in order.
    ///
    /// # Shapes
    /// - `prompt_embeds`: `[b, seq, 768]`; `regions`: `[b·r, 257, 1280]` (r regions per prompt);
    ///   `facial_token_mask`: `b·seq` flags; `valid_regions`: `b·r` flags → `[b, seq, 768]`
    pub fn forward(
        &self,
        prompt_embeds: Tensor<3>,
        regions: Tensor<3>,
        facial_token_mask: &[bool],
        valid_regions: &[bool],
    ) -> Result<Tensor<3>> {
        let [b, seq, dim] = prompt_embeds.dims();
        let n = regions.dims()[0];
        if facial_token_mask.len() != b * seq
            || valid_regions.len() != n
            || !n.is_multiple_of(b.max(1))
        {
            return Err(Error::InvalidRequest(format!(
                "FacialEncoder takes {b} prompt(s) of {seq} tokens with one flag each and a flag \
                 per region ({n} regions)"
            )));
        }
        let positions: Vec<usize> = (0..b * seq).filter(|&i| facial_token_mask[i]).collect();
        let valid: Vec<usize> = (0..n).filter(|&i| valid_regions[i]).collect();
        if positions.len() != valid.len() {
            return Err(Error::InvalidRequest(format!(
                "{} facial tokens in the prompt but {} valid regions",
                positions.len(),
                valid.len()
            )));
        }
        // Inference skips the work; training runs it so that every parameter gets a (zero)
        // gradient, as torch's empty products give, which AdamW's decay then sees.
        if positions.is_empty() && !prompt_embeds.is_autodiff() {
            return Ok(prompt_embeds);
        }
        let device = prompt_embeds.device();
        let index = |v: &[usize]| {
            Tensor::<1, Int>::from_data(
                TensorData::new(v.iter().map(|&i| i as i64).collect::<Vec<_>>(), [v.len()]),
                &device,
            )
        };
        let flat = prompt_embeds.reshape([b * seq, dim]);
        let tokens = self.region_tokens(regions);
        if positions.is_empty() {
            let unused = self.fuse_module.forward(
                flat.clone().slice([0..1, 0..dim]),
                tokens.slice([0..1, 0..dim]),
            );
            let zero = unused.sum().mul_scalar(0.0).reshape([1, 1]);
            return Ok((flat + zero).reshape([b, seq, dim]));
        }
        let tokens = tokens.select(0, index(&valid)); // [k, dim]
        let text = flat.clone().select(0, index(&positions));
        let fused = self.fuse_module.forward(text, tokens);
        // Scatter: the i-th facial position takes the i-th fused row.
        let mut mask = vec![false; b * seq];
        let mut rows = vec![0usize; b * seq];
        for (i, &p) in positions.iter().enumerate() {
            mask[p] = true;
            rows[p] = i;
        }
        let gathered = fused.select(0, index(&rows));
        let mask: Tensor<2, Bool> = Tensor::from_data(TensorData::new(mask, [b * seq, 1]), &device);
        let out = flat.mask_where(mask.expand([b * seq, dim]), gathered);
        Ok(out.reshape([b, seq, dim]))
    }
}
