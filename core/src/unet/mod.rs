//! `UNet2DConditionModel` (diffusers 0.23 `models/unet_2d_condition.py`), the SD1.5 denoiser.

pub mod adapter;
pub mod attention;
pub mod blocks;
pub mod config;
pub mod ldm;
pub mod transformer;

use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::store::ModuleSnapshot;
use burn::tensor::{DType, Device, Tensor};

use blocks::{BlockSettings, DownBlock, DownBlockConfig, MidBlock, UpBlock, UpBlockConfig};
pub use config::UNet2DConditionConfig;

use crate::Result;
use crate::kernels;
use crate::nn::embeddings::{TimestepEmbedding, timestep_embedding};
use crate::nn::{conv2d, group_norm};
use crate::weights::{
    LoadSpec, WeightSource, keymap, load_folder_model, load_with_rules, single_file,
};

/// The settings every block of a config's network shares.
fn block_settings(c: &UNet2DConditionConfig) -> BlockSettings {
    BlockSettings {
        temb_channels: c.block_out_channels[0] * 4,
        groups: c.norm_num_groups,
        eps: c.norm_eps,
        cross_attention_dim: c.cross_attention_dim,
        use_linear_projection: c.use_linear_projection,
    }
}

/// The down blocks and the mid block a config describes (the UNet's encoder half, which a
/// ControlNet copies).
pub fn encoder_blocks(c: &UNet2DConditionConfig, device: &Device) -> (Vec<DownBlock>, MidBlock) {
    let boc = &c.block_out_channels;
    let n = boc.len();
    let heads = c.heads();
    let layers = c.layers_per_block.expand(n);
    let tlayers = c.transformer_layers_per_block.expand(n);
    let s = block_settings(c);
    let down_blocks = (0..n)
        .map(|i| {
            let cfg = DownBlockConfig {
                layers: layers[i],
                in_channels: if i == 0 { boc[0] } else { boc[i - 1] },
                out_channels: boc[i],
                cross_attention: (c.down_block_types[i] == "CrossAttnDownBlock2D")
                    .then_some((heads[i], tlayers[i])),
                downsample: i + 1 < n,
                downsample_padding: c.downsample_padding,
            };
            DownBlock::new(&cfg, &s, device)
        })
        .collect();
    let mid_block = MidBlock::new(
        boc[n - 1],
        heads[n - 1],
        tlayers[n - 1],
        c.mid_block_scale_factor,
        &s,
        device,
    );
    (down_blocks, mid_block)
}

/// Loads a UNet-shaped model of a diffusers folder (`{dir}/config.json` parsed by `parse`, the
/// weights `{dir}/diffusion_pytorch_model[.variant].safetensors` with the UNet's key names):
/// the UNet and the ControlNet.
pub fn load_diffusers_folder<M: Module + ModuleSnapshot, C>(
    source: &dyn WeightSource,
    (dir, variant): (&str, Option<&str>),
    parse: impl FnOnce(&str, &str) -> Result<C>,
    build: impl FnOnce(&C) -> M,
    dtype: DType,
) -> Result<M> {
    load_folder_model(
        source,
        dir,
        "diffusion_pytorch_model",
        variant,
        parse,
        build,
        &LoadSpec {
            remap: keymap::UNET_REMAP,
            ignore_unused: &[],
            dtype,
        },
    )
}

/// A ControlNet's output for one UNet call: a residual for each skip connection (in order:
/// `conv_in`'s, then each down block's) and one for the mid block's output.
#[derive(Clone, Debug)]
pub struct ControlResiduals {
    pub down: Vec<Tensor<4>>,
    pub mid: Tensor<4>,
}

/// The conditional UNet.
#[derive(Module, Debug)]
pub struct UNet2DConditionModel {
    pub time_embedding: TimestepEmbedding,
    pub conv_in: Conv2d,
    pub down_blocks: Vec<DownBlock>,
    pub mid_block: MidBlock,
    pub up_blocks: Vec<UpBlock>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
    #[module(skip)]
    pub flip_sin_to_cos: bool,
    #[module(skip)]
    pub freq_shift: f64,
}

impl UNet2DConditionModel {
    /// Builds a randomly initialised UNet of `config`'s dimensions.
    pub fn new(c: &UNet2DConditionConfig, device: &Device) -> Self {
        let boc = &c.block_out_channels;
        let n = boc.len();
        let time_dim = boc[0] * 4;
        let heads = c.heads();
        let layers = c.layers_per_block.expand(n);
        let tlayers = c.transformer_layers_per_block.expand(n);
        let s = block_settings(c);
        let (down_blocks, mid_block) = encoder_blocks(c, device);
        let rev = |v: &[usize]| v.iter().rev().copied().collect::<Vec<_>>();
        let (rboc, rheads, rlayers, rtl) = (rev(boc), rev(&heads), rev(&layers), rev(&tlayers));
        let up_blocks = (0..n)
            .map(|i| {
                let cfg = UpBlockConfig {
                    layers: rlayers[i] + 1,
                    in_channels: rboc[(i + 1).min(n - 1)],
                    out_channels: rboc[i],
                    prev_output_channels: if i == 0 { rboc[0] } else { rboc[i - 1] },
                    cross_attention: (c.up_block_types[i] == "CrossAttnUpBlock2D")
                        .then_some((rheads[i], rtl[i])),
                    upsample: i + 1 < n,
                };
                UpBlock::new(&cfg, &s, device)
            })
            .collect();
        Self {
            time_embedding: TimestepEmbedding::new(boc[0], time_dim, device),
            conv_in: conv2d(c.in_channels, boc[0], c.conv_in_kernel, device),
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(c.norm_num_groups, boc[0], c.norm_eps, device),
            conv_out: conv2d(boc[0], c.out_channels, c.conv_out_kernel, device),
            flip_sin_to_cos: c.flip_sin_to_cos,
            freq_shift: c.freq_shift,
        }
    }

    /// Loads `{dir}/config.json` and `{dir}/diffusion_pytorch_model[.variant].safetensors`.
    pub fn load(
        source: &dyn WeightSource,
        dir: &str,
        variant: Option<&str>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        load_diffusers_folder(
            source,
            (dir, variant),
            UNet2DConditionConfig::from_json,
            |config| Self::new(config, device),
            dtype,
        )
    }

    /// Loads the UNet of a single-file SD1.x checkpoint (`model.diffusion_model.*` keys) with
    /// the given config (single files carry none; [`UNet2DConditionConfig::sd15`] for SD1.5).
    pub fn load_single_file(
        source: &dyn WeightSource,
        path: &str,
        config: &UNet2DConditionConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let ignore = single_file::other_parts(single_file::UNET_PREFIX);
        load_with_rules(
            Self::new(config, device),
            source,
            path,
            &ldm::ldm_unet_rules(config),
            &ignore,
            dtype,
        )
    }

    /// Predicts the noise (or v / sample, per the scheduler config) of `sample` at `timesteps`.
    ///
    /// # Shapes
    /// - `sample`: `[b, in_channels, h, w]` (h, w any size the blocks divide, or not: upsampling
    ///   follows the skip sizes), `timesteps`: `[b]`, `context`: `[b, seq, cross_attention_dim]`
    ///   → `[b, out_channels, h, w]`
    pub fn forward(
        &self,
        sample: Tensor<4>,
        timesteps: Tensor<1>,
        context: Tensor<3>,
    ) -> Tensor<4> {
        self.forward_controlled(sample, timesteps, context, None)
    }

    /// [`Self::forward`] with a ControlNet's residuals added to the skip connections and the
    /// mid block's output (diffusers' `down_block_additional_residuals`,
    /// `mid_block_additional_residual`; each of the residuals' batch, `b` or one that is
    /// repeated to `b`).
    pub fn forward_controlled(
        &self,
        sample: Tensor<4>,
        timesteps: Tensor<1>,
        context: Tensor<3>,
        control: Option<&ControlResiduals>,
    ) -> Tensor<4> {
        // Inputs come in the caller's float type; the network runs in its weights' (f16 on
        // GPUs) and hands back the caller's, as diffusers casts the timestep features.
        let (out_dtype, dtype) = (sample.dtype(), self.dtype());
        let context = context.cast(dtype);
        let t_dim = self.time_embedding.linear_1.weight.dims()[0];
        let t_emb = timestep_embedding(timesteps, t_dim, self.flip_sin_to_cos, self.freq_shift);
        let temb = self.time_embedding.forward(t_emb.cast(dtype));

        let mut x = self.conv_in.forward(sample.cast(dtype));
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (out, states) = block.forward(x, temb.clone(), context.clone());
            x = out;
            skips.extend(states);
        }
        x = self.mid_block.forward(x, temb.clone(), context.clone());
        if let Some(control) = control {
            let b = x.dims()[0];
            let fit = |r: &Tensor<4>| {
                let [rb, c, h, w] = r.dims();
                r.clone()
                    .cast(dtype)
                    .repeat_dim(0, b / rb.max(1))
                    .reshape([b, c, h, w])
            };
            for (skip, r) in skips.iter_mut().zip(&control.down) {
                *skip = skip.clone() + fit(r);
            }
            x = x + fit(&control.mid);
        }
        for block in &self.up_blocks {
            let remaining = skips.len() - block.resnets.len();
            // The next block's last skip fixes this block's upsampled size (odd sizes).
            let upsample_size = (remaining > 0).then(|| {
                let [_, _, h, w] = skips[remaining - 1].dims();
                [h, w]
            });
            x = block.forward(x, &mut skips, temb.clone(), context.clone(), upsample_size);
        }
        self.conv_out
            .forward(kernels::group_norm(&self.conv_norm_out, x, true))
            .cast(out_dtype)
    }

    /// The width of the text context its cross-attention reads (the mid block's `attn2`).
    pub fn cross_attention_dim(&self) -> usize {
        self.mid_block.attentions[0].transformer_blocks[0]
            .attn2
            .to_k
            .weight
            .dims()[0]
    }

    /// The float type of the weights (what the network computes in).
    pub fn dtype(&self) -> DType {
        self.conv_in.weight.val().dtype()
    }
}
