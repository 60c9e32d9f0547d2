//! `AutoencoderKL` config as diffusers writes `vae/config.json`.

use serde::Deserialize;

use crate::{Error, Result};

/// Dimensions of an `AutoencoderKL`, with diffusers' defaults for absent fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AutoencoderKLConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub down_block_types: Vec<String>,
    pub up_block_types: Vec<String>,
    pub block_out_channels: Vec<usize>,
    pub layers_per_block: usize,
    pub act_fn: String,
    pub latent_channels: usize,
    pub norm_num_groups: usize,
    pub scaling_factor: f64,
}

impl Default for AutoencoderKLConfig {
    fn default() -> Self {
        Self {
            in_channels: 3,
            out_channels: 3,
            down_block_types: vec!["DownEncoderBlock2D".into()],
            up_block_types: vec!["UpDecoderBlock2D".into()],
            block_out_channels: vec![64],
            layers_per_block: 1,
            act_fn: "silu".into(),
            latent_channels: 4,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
        }
    }
}

impl AutoencoderKLConfig {
    /// The SD1.5 VAE (`runwayml/stable-diffusion-v1-5/vae/config.json`).
    pub fn sd15() -> Self {
        Self {
            down_block_types: vec!["DownEncoderBlock2D".into(); 4],
            up_block_types: vec!["UpDecoderBlock2D".into(); 4],
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            ..Self::default()
        }
    }

    /// Parses and validates `config.json`.
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_string(),
            reason,
        };
        let config: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let n = config.block_out_channels.len();
        if n == 0 || config.down_block_types.len() != n || config.up_block_types.len() != n {
            return Err(bad("block_out_channels, down_block_types and up_block_types must have the same, non-zero length".into()));
        }
        if let Some(t) = config
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
            .or_else(|| {
                config
                    .up_block_types
                    .iter()
                    .find(|t| *t != "UpDecoderBlock2D")
            })
        {
            return Err(bad(format!("unsupported block type {t}")));
        }
        if config.act_fn != "silu" {
            return Err(bad(format!("unsupported act_fn {}", config.act_fn)));
        }
        if config
            .block_out_channels
            .iter()
            .any(|c| config.norm_num_groups == 0 || !c.is_multiple_of(config.norm_num_groups))
        {
            return Err(bad(
                "every block width must be divisible by norm_num_groups".into(),
            ));
        }
        Ok(config)
    }
}
