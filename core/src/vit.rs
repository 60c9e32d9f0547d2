//! A ViT image encoder as transformers `ViTModel` (`facebook/dino-vits16`, the DINO metric's
//! network): patch convolution with bias, a class token, learned positions, pre-LN encoder
//! layers (the CLIP encoder's, GELU), a final layer norm; the class token's final state is the
//! image's embedding. Input as `ViTImageProcessor`: Pillow bilinear resize to the square size
//! (no crop), ÷255, ImageNet mean and std.

use burn::module::{Module, Param};
use burn::nn::LayerNorm;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use serde::Deserialize;

use crate::bisenet::preprocess::{IMAGENET_MEAN, IMAGENET_STD};
use crate::clip::HiddenAct;
use crate::clip::encoder::{ClipEncoder, EncoderDims, layer_norm};
use crate::clip::image_processor::normalize_with;
use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};
use crate::weights::{LoadSpec, WeightSource, load_folder_model};
use crate::{Error, Result};

/// `ViTConfig` with transformers' defaults for absent fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ViTConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub layer_norm_eps: f64,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
}

impl Default for ViTConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: HiddenAct::Gelu,
            layer_norm_eps: 1e-12,
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
        }
    }
}

impl ViTConfig {
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.to_string(),
            reason,
        };
        let c: Self = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if c.num_attention_heads == 0
            || !c.hidden_size.is_multiple_of(c.num_attention_heads)
            || c.patch_size == 0
            || !c.image_size.is_multiple_of(c.patch_size)
        {
            return Err(bad(format!(
                "hidden {} / heads {}, image {} / patch {} do not fit",
                c.hidden_size, c.num_attention_heads, c.image_size, c.patch_size
            )));
        }
        Ok(c)
    }
}

/// Checkpoint keys (transformers ViT, with or without the `vit.` prefix of the classifier) →
/// this module's paths.
const REMAP: &[(&str, &str)] = &[
    (r"^vit\.", ""),
    (
        r"^embeddings\.patch_embeddings\.projection\.",
        "embeddings.patch_embedding.",
    ),
    (r"\.attention\.attention\.query\.", ".self_attn.q_proj."),
    (r"\.attention\.attention\.key\.", ".self_attn.k_proj."),
    (r"\.attention\.attention\.value\.", ".self_attn.v_proj."),
    (r"\.attention\.output\.dense\.", ".self_attn.out_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"^(encoder\.layer\.\d+)\.output\.dense\.", "$1.mlp.fc2."),
    (r"\.layernorm_before\.", ".layer_norm1."),
    (r"\.layernorm_after\.", ".layer_norm2."),
    (r"^encoder\.layer\.", "encoder.layers."),
];

/// The pooler (`dense` + tanh) and a classifier head are not part of the embedding.
const IGNORE: &[&str] = &[r"^pooler\.", r"^classifier\."];

#[derive(Module, Debug)]
pub struct ViTEmbeddings {
    pub cls_token: Param<Tensor<3>>,
    pub position_embeddings: Param<Tensor<3>>,
    pub patch_embedding: Conv2d,
}

#[derive(Module, Debug)]
pub struct ViTModel {
    pub embeddings: ViTEmbeddings,
    pub encoder: ClipEncoder,
    pub layernorm: LayerNorm,
    #[module(skip)]
    pub image_size: usize,
}

impl ViTModel {
    pub fn new(c: &ViTConfig, device: &Device) -> Self {
        let h = c.hidden_size;
        let grid = c.image_size / c.patch_size;
        let dims = EncoderDims {
            hidden: h,
            intermediate: c.intermediate_size,
            heads: c.num_attention_heads,
            layers: c.num_hidden_layers,
            act: c.hidden_act,
            eps: c.layer_norm_eps,
        };
        Self {
            embeddings: ViTEmbeddings {
                cls_token: Param::from_tensor(Tensor::zeros([1, 1, h], device)),
                position_embeddings: Param::from_tensor(Tensor::zeros(
                    [1, grid * grid + 1, h],
                    device,
                )),
                patch_embedding: Conv2dConfig::new(
                    [c.num_channels, h],
                    [c.patch_size, c.patch_size],
                )
                .with_stride([c.patch_size, c.patch_size])
                .init(device),
            },
            encoder: ClipEncoder::new(&dims, false, device),
            layernorm: layer_norm(h, c.layer_norm_eps, device),
            image_size: c.image_size,
        }
    }

    /// Loads `{dir}/config.json` and `{dir}/model.safetensors` (f32).
    pub fn load(source: &dyn WeightSource, dir: &str, device: &Device) -> Result<Self> {
        load_folder_model(
            source,
            dir,
            "model",
            None,
            ViTConfig::from_json,
            |c| Self::new(c, device),
            &LoadSpec {
                remap: REMAP,
                ignore_unused: IGNORE,
                dtype: DType::F32,
            },
        )
    }

    /// `ViTImageProcessor`'s input of `img`: planar `[3, size, size]`.
    pub fn preprocess(&self, img: &RgbImage) -> Vec<f32> {
        let s = self.image_size;
        normalize_with(
            &resize(img, s, s, Filter::Bilinear),
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
    }

    /// The class token's final state (after the layer norm) of each image: `[n, hidden]`.
    pub fn embed(&self, images: &[RgbImage], device: &Device) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.image_size;
        let pixels: Vec<f32> = images.iter().flat_map(|i| self.preprocess(i)).collect();
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [images.len(), 3, s, s]), device);
        let [b, h] = [images.len(), self.embeddings.cls_token.val().dims()[2]];
        let patches = self.embeddings.patch_embedding.forward(x); // [b, h, g, g]
        let [_, _, g, _] = patches.dims();
        let patches = patches.reshape([b, h, g * g]).swap_dims(1, 2);
        let cls = self.embeddings.cls_token.val().expand([b, 1, h]);
        let x = Tensor::cat(vec![cls, patches], 1) + self.embeddings.position_embeddings.val();
        let states = self.encoder.forward(x);
        let last = self.layernorm.forward(states[states.len() - 1].clone());
        let cls = last.slice([0..b, 0..1, 0..h]).reshape([b, h]);
        let values = cls
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        Ok(values.chunks(h).map(<[f32]>::to_vec).collect())
    }
}
