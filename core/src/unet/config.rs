//! `UNet2DConditionModel` config as diffusers writes `unet/config.json`.

use serde::Deserialize;

use crate::{Error, Result};

/// An int or a per-block list (`attention_head_dim`, `layers_per_block`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    One(usize),
    Each(Vec<usize>),
}

impl PerBlock {
    /// The value for each of `n` blocks.
    pub fn expand(&self, n: usize) -> Vec<usize> {
        match self {
            Self::One(v) => vec![*v; n],
            Self::Each(v) => v.clone(),
        }
    }
}

/// The fields of `UNet2DConditionModel` we support, with diffusers' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UNet2DConditionConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub flip_sin_to_cos: bool,
    pub freq_shift: f64,
    pub down_block_types: Vec<String>,
    pub mid_block_type: Option<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: PerBlock,
    pub downsample_padding: usize,
    pub mid_block_scale_factor: f64,
    pub act_fn: String,
    pub norm_num_groups: usize,
    pub norm_eps: f64,
    pub cross_attention_dim: usize,
    pub transformer_layers_per_block: PerBlock,
    /// In SD1.5 configs this is really the number of heads (a diffusers naming quirk).
    pub attention_head_dim: PerBlock,
    pub num_attention_heads: Option<PerBlock>,
    pub use_linear_projection: bool,
    pub only_cross_attention: bool,
    pub upcast_attention: bool,
    pub center_input_sample: bool,
    pub resnet_time_scale_shift: String,
    pub class_embed_type: Option<String>,
    pub addition_embed_type: Option<String>,
    pub time_embedding_type: String,
    pub conv_in_kernel: usize,
    pub conv_out_kernel: usize,
}

impl Default for UNet2DConditionConfig {
    fn default() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: [
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "CrossAttnDownBlock2D",
                "DownBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            mid_block_type: Some("UNetMidBlock2DCrossAttn".into()),
            up_block_types: [
                "UpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
                "CrossAttnUpBlock2D",
            ]
            .map(String::from)
            .to_vec(),
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: PerBlock::One(2),
            downsample_padding: 1,
            mid_block_scale_factor: 1.0,
            act_fn: "silu".into(),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            cross_attention_dim: 1280,
            transformer_layers_per_block: PerBlock::One(1),
            attention_head_dim: PerBlock::One(8),
            num_attention_heads: None,
            use_linear_projection: false,
            only_cross_attention: false,
            upcast_attention: false,
            center_input_sample: false,
            resnet_time_scale_shift: "default".into(),
            class_embed_type: None,
            addition_embed_type: None,
            time_embedding_type: "positional".into(),
            conv_in_kernel: 3,
            conv_out_kernel: 3,
        }
    }
}

impl UNet2DConditionConfig {
    /// The SD1.5 UNet (`runwayml/stable-diffusion-v1-5/unet/config.json`).
    pub fn sd15() -> Self {
        Self {
            cross_attention_dim: 768,
            ..Self::default()
        }
    }

    /// Parses and validates `config.json`.
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let config: Self = serde_json::from_str(text).map_err(|e| Error::Config {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        config.validate().map_err(|reason| Error::Config {
            path: path.to_string(),
            reason,
        })?;
        Ok(config)
    }

    /// Heads per down block (`num_attention_heads`, falling back to `attention_head_dim`).
    pub fn heads(&self) -> Vec<usize> {
        let n = self.block_out_channels.len();
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .expand(n)
    }

    fn validate(&self) -> core::result::Result<(), String> {
        let n = self.block_out_channels.len();
        if n == 0 || self.down_block_types.len() != n || self.up_block_types.len() != n {
            return Err("block_out_channels, down_block_types and up_block_types must have the same, non-zero length".into());
        }
        for (name, list) in [
            ("layers_per_block", &self.layers_per_block),
            (
                "transformer_layers_per_block",
                &self.transformer_layers_per_block,
            ),
            ("attention_head_dim", &self.attention_head_dim),
        ] {
            if list.expand(n).len() != n {
                return Err(format!("{name} must have one entry per block"));
            }
        }
        let heads = self.heads();
        if heads.len() != n || heads.contains(&0) {
            return Err("num_attention_heads must have one positive entry per block".into());
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                return Err(format!("unsupported down block {t}"));
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return Err(format!("unsupported up block {t}"));
            }
        }
        if self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            return Err("only the UNetMidBlock2DCrossAttn mid block is supported".into());
        }
        let unsupported = [
            (self.act_fn != "silu", "act_fn other than silu"),
            (self.only_cross_attention, "only_cross_attention"),
            (self.center_input_sample, "center_input_sample"),
            (
                self.resnet_time_scale_shift != "default",
                "resnet_time_scale_shift other than default",
            ),
            (self.class_embed_type.is_some(), "class embeddings"),
            (
                self.addition_embed_type.is_some(),
                "addition embeddings (SDXL)",
            ),
            (
                self.time_embedding_type != "positional",
                "time_embedding_type other than positional",
            ),
            (
                self.conv_in_kernel.is_multiple_of(2) || self.conv_out_kernel.is_multiple_of(2),
                "even conv kernels",
            ),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(bad, _)| *bad) {
            return Err(format!("unsupported: {what}"));
        }
        // A width that is not a multiple of its head count is allowed: diffusers builds
        // `heads × (width // heads)` attention dims (width 40, 3 heads → 39), as we do.
        for (i, &c) in self.block_out_channels.iter().enumerate() {
            if !c.is_multiple_of(self.norm_num_groups) || c < heads[i] {
                return Err(format!(
                    "block width {c} must be divisible by norm_num_groups and at least its head count"
                ));
            }
        }
        Ok(())
    }
}
