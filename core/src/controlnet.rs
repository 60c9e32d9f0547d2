//! `ControlNetModel` (diffusers 0.23 `models/controlnet.py`): a copy of the UNet's encoder half
//! that sees the noisy latents plus an embedded control image (Canny edges, a pose, a depth
//! map…) and hands the UNet a residual for each skip connection and for its mid block, through
//! zero-initialised 1×1 convolutions, times the conditioning scale.
//!
//! One folder per ControlNet in the diffusers layout (`config.json`,
//! `diffusion_pytorch_model[.fp16].safetensors`); every dimension comes from the config.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Tensor};
use serde::Deserialize;

use crate::nn::conv2d;
use crate::nn::embeddings::{TimestepEmbedding, timestep_embedding};
use crate::unet::blocks::{DownBlock, MidBlock};
use crate::unet::ldm::ldm_controlnet_rules;
use crate::unet::{
    ControlResiduals, UNet2DConditionConfig, UNet2DConditionModel, encoder_blocks,
    load_diffusers_folder,
};
use crate::weights::{WeightSource, load_with_rules};
use crate::{Error, Result};

/// The ControlNet-only fields of `config.json` (the rest is the UNet's).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct ControlFields {
    conditioning_channels: usize,
    conditioning_embedding_out_channels: Vec<usize>,
    controlnet_conditioning_channel_order: String,
    global_pool_conditions: bool,
}

impl Default for ControlFields {
    fn default() -> Self {
        Self {
            conditioning_channels: 3,
            conditioning_embedding_out_channels: vec![16, 32, 96, 256],
            controlnet_conditioning_channel_order: "rgb".into(),
            global_pool_conditions: false,
        }
    }
}

/// A ControlNet's config: its UNet-shaped encoder and its control-image embedding.
#[derive(Debug, Clone)]
pub struct ControlNetConfig {
    pub unet: UNet2DConditionConfig,
    pub conditioning_channels: usize,
    pub conditioning_embedding_out_channels: Vec<usize>,
    /// The control image's channels reversed first (`bgr` ControlNets).
    pub bgr: bool,
    /// Residuals averaged over space (the shuffle ControlNets).
    pub global_pool_conditions: bool,
}

impl ControlNetConfig {
    /// The SD1.5 ControlNets' (lllyasviel's `control_v11*_sd15_*`): the SD1.5 UNet's encoder
    /// and the (16, 32, 96, 256) conditioning embedding. Single files carry no config.
    pub fn sd15() -> Self {
        Self {
            unet: UNet2DConditionConfig::sd15(),
            conditioning_channels: 3,
            conditioning_embedding_out_channels: vec![16, 32, 96, 256],
            bgr: false,
            global_pool_conditions: false,
        }
    }

    /// Parses `config.json` (its up-block list, which a ControlNet lacks, is taken as the
    /// mirror of the down blocks so that the UNet's validation applies unchanged).
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_string(),
            reason,
        };
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let fields: ControlFields =
            serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
        if let Some(map) = value.as_object_mut()
            && !map.contains_key("up_block_types")
        {
            let down: Vec<String> = map
                .get("down_block_types")
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            let up: Vec<String> = down.iter().rev().map(|d| d.replace("Down", "Up")).collect();
            map.insert("up_block_types".into(), serde_json::json!(up));
        }
        let unet = UNet2DConditionConfig::from_json(path, &value.to_string())?;
        let embedding = &fields.conditioning_embedding_out_channels;
        if embedding.is_empty() || fields.conditioning_channels == 0 {
            return Err(bad(
                "conditioning_embedding_out_channels and conditioning_channels must not be empty"
                    .into(),
            ));
        }
        let bgr = match fields.controlnet_conditioning_channel_order.as_str() {
            "rgb" => false,
            "bgr" => true,
            other => return Err(bad(format!("unknown channel order `{other}`"))),
        };
        Ok(Self {
            unet,
            conditioning_channels: fields.conditioning_channels,
            conditioning_embedding_out_channels: embedding.clone(),
            bgr,
            global_pool_conditions: fields.global_pool_conditions,
        })
    }
}

/// `ControlNetConditioningEmbedding`: the control image down to the latent size.
#[derive(Module, Debug)]
pub struct ConditioningEmbedding {
    pub conv_in: Conv2d,
    pub blocks: Vec<Conv2d>,
    pub conv_out: Conv2d,
}

impl ConditioningEmbedding {
    fn new(c: &ControlNetConfig, device: &Device) -> Self {
        let ch = &c.conditioning_embedding_out_channels;
        let mut blocks = Vec::new();
        for pair in ch.windows(2) {
            blocks.push(conv2d(pair[0], pair[0], 3, device));
            blocks.push(
                Conv2dConfig::new([pair[0], pair[1]], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
            );
        }
        Self {
            conv_in: conv2d(c.conditioning_channels, ch[0], 3, device),
            blocks,
            conv_out: conv2d(ch[ch.len() - 1], c.unet.block_out_channels[0], 3, device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, conditioning_channels, H, W]` → `[b, block_out_channels[0], H/2ⁿ, W/2ⁿ]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = silu(self.conv_in.forward(x));
        for block in &self.blocks {
            x = silu(block.forward(x));
        }
        self.conv_out.forward(x)
    }
}

/// The ControlNet.
#[derive(Module, Debug)]
pub struct ControlNetModel {
    pub time_embedding: TimestepEmbedding,
    pub conv_in: Conv2d,
    pub controlnet_cond_embedding: ConditioningEmbedding,
    pub down_blocks: Vec<DownBlock>,
    pub controlnet_down_blocks: Vec<Conv2d>,
    pub mid_block: MidBlock,
    pub controlnet_mid_block: Conv2d,
    #[module(skip)]
    pub flip_sin_to_cos: bool,
    #[module(skip)]
    pub freq_shift: f64,
    #[module(skip)]
    pub bgr: bool,
    #[module(skip)]
    pub global_pool_conditions: bool,
    #[module(skip)]
    pub cross_attention_dim: usize,
}

impl ControlNetModel {
    /// Builds a randomly initialised ControlNet of `config`'s dimensions.
    pub fn new(c: &ControlNetConfig, device: &Device) -> Self {
        let u = &c.unet;
        let boc = &u.block_out_channels;
        let (down_blocks, mid_block) = encoder_blocks(u, device);
        // One 1×1 convolution per skip connection, in the UNet's order.
        let mut channels = vec![boc[0]];
        for (i, block) in down_blocks.iter().enumerate() {
            channels.extend(std::iter::repeat_n(boc[i], block.resnets.len()));
            if !block.downsamplers.is_empty() {
                channels.push(boc[i]);
            }
        }
        let mid = boc[boc.len() - 1];
        Self {
            time_embedding: TimestepEmbedding::new(boc[0], boc[0] * 4, device),
            conv_in: conv2d(u.in_channels, boc[0], u.conv_in_kernel, device),
            controlnet_cond_embedding: ConditioningEmbedding::new(c, device),
            down_blocks,
            controlnet_down_blocks: channels
                .iter()
                .map(|&ch| conv2d(ch, ch, 1, device))
                .collect(),
            mid_block,
            controlnet_mid_block: conv2d(mid, mid, 1, device),
            flip_sin_to_cos: u.flip_sin_to_cos,
            freq_shift: u.freq_shift,
            bgr: c.bgr,
            global_pool_conditions: c.global_pool_conditions,
            cross_attention_dim: u.cross_attention_dim,
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
            ControlNetConfig::from_json,
            |config| Self::new(config, device),
            dtype,
        )
    }

    /// Loads a single-file ControlNet (`.safetensors` in the LDM / A1111 layout, as ControlNet
    /// 1.1 and ComfyUI ship them) with the given config ([`ControlNetConfig::sd15`] for SD1.5).
    pub fn load_single_file(
        source: &dyn WeightSource,
        path: &str,
        config: &ControlNetConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let hint_convs = 2 * config.conditioning_embedding_out_channels.len();
        load_with_rules(
            Self::new(config, device),
            source,
            path,
            &ldm_controlnet_rules(&config.unet, hint_convs),
            &[],
            dtype,
        )
    }

    /// Whether this ControlNet fits `unet`: the same latent channels, text width and skip
    /// connections (an SDXL ControlNet or one for another base does not). `name` labels the
    /// error.
    pub fn check_fits(&self, unet: &UNet2DConditionModel, name: &str) -> Result<()> {
        let latent = unet.conv_out.weight.dims()[0];
        let ours = self.conv_in.weight.dims()[1];
        let unet_context = unet.cross_attention_dim();
        let skips = |blocks: &[DownBlock]| -> Vec<usize> {
            blocks
                .iter()
                .map(|b| b.resnets.len() + b.downsamplers.len())
                .collect()
        };
        let reason = if ours != latent {
            Some(format!(
                "it takes {ours} latent channels and the UNet has {latent}"
            ))
        } else if self.cross_attention_dim != unet_context {
            Some(format!(
                "its text width is {} and the UNet's {unet_context} (a ControlNet for another base, e.g. SDXL)",
                self.cross_attention_dim
            ))
        } else if skips(&self.down_blocks) != skips(&unet.down_blocks)
            || self.conv_in.weight.dims()[0] != unet.conv_in.weight.dims()[0]
        {
            Some("its blocks do not match the UNet's".into())
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::WeightMismatch {
                path: name.to_string(),
                reason: format!("this ControlNet does not fit the model: {reason}"),
            }),
            None => Ok(()),
        }
    }

    /// The residuals for the UNet, times `scale`.
    ///
    /// # Shapes
    /// - `sample`: `[b, C, h, w]` (scaled model input), `timesteps`: `[b]`, `context`:
    ///   `[b, seq, D]`, `cond`: `[b, 3, 8h, 8w]` in [0, 1]
    pub fn forward(
        &self,
        sample: Tensor<4>,
        timesteps: Tensor<1>,
        context: Tensor<3>,
        cond: Tensor<4>,
        scale: f64,
    ) -> ControlResiduals {
        let (out_dtype, dtype) = (sample.dtype(), self.conv_in.weight.val().dtype());
        let context = context.cast(dtype);
        let cond = if self.bgr { cond.flip([1]) } else { cond };
        let t_dim = self.time_embedding.linear_1.weight.dims()[0];
        let t_emb = timestep_embedding(timesteps, t_dim, self.flip_sin_to_cos, self.freq_shift);
        let temb = self.time_embedding.forward(t_emb.cast(dtype));
        let mut x = self.conv_in.forward(sample.cast(dtype))
            + self.controlnet_cond_embedding.forward(cond.cast(dtype));
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (out, states) = block.forward(x, temb.clone(), context.clone());
            x = out;
            skips.extend(states);
        }
        x = self.mid_block.forward(x, temb, context);
        let finish = |t: Tensor<4>| {
            let t = if self.global_pool_conditions {
                t.mean_dim(3).mean_dim(2)
            } else {
                t
            };
            (t * scale).cast(out_dtype)
        };
        ControlResiduals {
            down: skips
                .into_iter()
                .zip(&self.controlnet_down_blocks)
                .map(|(s, conv)| finish(conv.forward(s)))
                .collect(),
            mid: finish(self.controlnet_mid_block.forward(x)),
        }
    }
}
