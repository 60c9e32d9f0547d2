//! `CLIPTextConfig` as transformers writes it to `text_encoder/config.json`.

use serde::Deserialize;

use crate::{Error, Result};

/// The activation named by `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HiddenAct {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP, SD1.5).
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// Exact erf GELU (OpenCLIP ViT-H/bigG).
    #[serde(rename = "gelu")]
    Gelu,
    /// tanh-approximated GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
}

/// Dimensions of a CLIP text transformer, with transformers' defaults for absent fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: HiddenAct,
    pub layer_norm_eps: f64,
}

impl Default for ClipTextConfig {
    /// transformers' `CLIPTextConfig()` defaults.
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipTextConfig {
    /// The SD1.5 text encoder, `openai/clip-vit-large-patch14`'s text tower.
    pub fn sd15() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_attention_heads: 12,
            ..Self::default()
        }
    }

    /// Parses `config.json`: a `CLIPTextConfig`, or a full `CLIPConfig` with `text_config`.
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let value = match value.get("text_config") {
            Some(inner) if inner.is_object() => inner.clone(),
            _ => value,
        };
        let config: Self = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        config.validate().map_err(bad)?;
        Ok(config)
    }

    /// Checks the dimensions fit together.
    pub fn validate(&self) -> core::result::Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.num_hidden_layers == 0 {
            return Err("num_hidden_layers must be at least 1".into());
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.intermediate_size == 0
        {
            return Err(
                "vocab_size, max_position_embeddings and intermediate_size must be positive".into(),
            );
        }
        Ok(())
    }
}

/// `CLIPVisionConfig` (`image_encoder/config.json`), with transformers' defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: HiddenAct,
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: HiddenAct::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl ClipVisionConfig {
    /// Parses `config.json`: a `CLIPVisionConfig`, or a full `CLIPConfig` whose `vision_config`
    /// is used with the top-level `projection_dim` (what `CLIPModel` builds `visual_projection`
    /// with; the nested one is transformers' default written along, 512 whatever the model).
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let value = match value.get("vision_config") {
            Some(inner) if inner.is_object() => {
                let mut inner = inner.clone();
                if let (Some(p), Some(obj)) = (value.get("projection_dim"), inner.as_object_mut()) {
                    obj.insert("projection_dim".into(), p.clone());
                }
                inner
            }
            _ => value,
        };
        let config: Self = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        config.validate().map_err(bad)?;
        Ok(config)
    }

    pub fn validate(&self) -> core::result::Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.patch_size == 0 || !self.image_size.is_multiple_of(self.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_hidden_layers < 2 {
            return Err(
                "num_hidden_layers must be at least 2 (the penultimate state is used)".into(),
            );
        }
        Ok(())
    }

    /// Tokens per image: one per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        (self.image_size / self.patch_size).pow(2) + 1
    }
}
