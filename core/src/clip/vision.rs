//! The CLIP vision tower, as transformers 4.31 `CLIPVisionModelWithProjection`: patch and class
//! embeddings, pre-LN ("pre_layrnorm", upstream's spelling), the encoder, the class token's
//! post-LN and the projection. ConsistentID reads `hidden_states[-2]`.
//!
//! Field names equal the checkpoint keys (`vision_model.encoder.layers.{i}.mlp.fc1`).

use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, Linear, LinearConfig};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Device, Int, Tensor};

use super::config::ClipVisionConfig;
use super::encoder::{ClipEncoder, EncoderDims, layer_norm};
use crate::weights::{LoadSpec, WeightSource, keymap, load_folder_model};
use crate::{Error, Result};

/// `CLIPVisionModelWithProjection`.
#[derive(Module, Debug)]
pub struct ClipVisionModelWithProjection {
    pub vision_model: ClipVisionTransformer,
    pub visual_projection: Linear,
}

/// `CLIPVisionTransformer`.
#[derive(Module, Debug)]
pub struct ClipVisionTransformer {
    pub embeddings: ClipVisionEmbeddings,
    pub pre_layrnorm: LayerNorm,
    pub encoder: ClipEncoder,
    pub post_layernorm: LayerNorm,
}

/// `CLIPVisionEmbeddings`: a bias-free patch convolution, a learned class token, positions.
#[derive(Module, Debug)]
pub struct ClipVisionEmbeddings {
    pub class_embedding: Param<Tensor<1>>,
    /// `[hidden, channels, patch, patch]`.
    pub patch_embedding: ClipPatchEmbedding,
    pub position_embedding: Embedding,
}

/// The patch convolution's weight (stride = kernel = patch size, no bias).
#[derive(Module, Debug)]
pub struct ClipPatchEmbedding {
    pub weight: Param<Tensor<4>>,
}

/// What the vision tower returns.
pub struct ClipVisionOutput {
    /// The last layer's output, `[batch, tokens, hidden]`.
    pub last_hidden_state: Tensor<3>,
    /// The embeddings after `pre_layrnorm`, then each layer's output.
    pub hidden_states: Vec<Tensor<3>>,
    /// `visual_projection(post_layernorm(last_hidden_state[:, 0]))`, `[batch, projection]`.
    pub image_embeds: Tensor<2>,
}

impl ClipVisionOutput {
    /// `hidden_states[-2]`, what ConsistentID and IP-Adapter-Plus use.
    pub fn penultimate(&self) -> Tensor<3> {
        self.hidden_states[self.hidden_states.len() - 2].clone()
    }
}

impl ClipVisionModelWithProjection {
    /// A randomly initialised model of `config`'s dimensions.
    pub fn new(config: &ClipVisionConfig, device: &Device) -> Self {
        let h = config.hidden_size;
        let p = config.patch_size;
        Self {
            vision_model: ClipVisionTransformer {
                embeddings: ClipVisionEmbeddings {
                    class_embedding: Param::from_tensor(Tensor::zeros([h], device)),
                    patch_embedding: ClipPatchEmbedding {
                        weight: Param::from_tensor(Tensor::zeros(
                            [h, config.num_channels, p, p],
                            device,
                        )),
                    },
                    position_embedding: EmbeddingConfig::new(config.num_positions(), h)
                        .init(device),
                },
                pre_layrnorm: layer_norm(h, config.layer_norm_eps, device),
                encoder: ClipEncoder::new(&EncoderDims::from(config), false, device),
                post_layernorm: layer_norm(h, config.layer_norm_eps, device),
            },
            visual_projection: LinearConfig::new(h, config.projection_dim)
                .with_bias(false)
                .init(device),
        }
    }

    /// Loads `{dir}/config.json` and `{dir}/model[.variant].safetensors`.
    pub fn load(
        source: &dyn WeightSource,
        dir: &str,
        variant: Option<&str>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        load_folder_model(
            source,
            dir,
            "model",
            variant,
            ClipVisionConfig::from_json,
            |config| Self::new(config, device),
            &LoadSpec {
                remap: keymap::CLIP_VISION_REMAP,
                ignore_unused: keymap::CLIP_VISION_IGNORE,
                dtype,
            },
        )
    }

    /// The square input side the position embeddings were trained for.
    pub fn image_size(&self) -> usize {
        let positions = self
            .vision_model
            .embeddings
            .position_embedding
            .weight
            .dims()[0];
        let patch = self.vision_model.embeddings.patch_embedding.weight.dims()[2];
        (((positions - 1) as f64).sqrt() as usize) * patch
    }

    /// # Shapes
    /// - `pixel_values`: `[batch, channels, size, size]` (normalised) → see [`ClipVisionOutput`]
    pub fn forward(&self, pixel_values: Tensor<4>) -> Result<ClipVisionOutput> {
        let vm = &self.vision_model;
        let e = &vm.embeddings;
        let w = e.patch_embedding.weight.val();
        let [hidden, channels, patch, _] = w.dims();
        let [batch, c, height, width] = pixel_values.dims();
        let size = self.image_size();
        if c != channels || height != size || width != size {
            return Err(Error::InvalidRequest(format!(
                "the vision tower takes [N, {channels}, {size}, {size}] images, got [{batch}, {c}, {height}, {width}]"
            )));
        }
        let options = ConvOptions::new([patch, patch], [0, 0], [1, 1], 1);
        // The tower runs in its weights' float type; what it returns is f32.
        let dtype = w.dtype();
        let patches = conv2d(pixel_values.cast(dtype), w, None, options); // [b, hidden, g, g]
        let grid = size / patch;
        let patches = patches
            .reshape([batch, hidden, grid * grid])
            .swap_dims(1, 2);
        let class = e
            .class_embedding
            .val()
            .reshape([1, 1, hidden])
            .expand([batch, 1, hidden]);
        let tokens = grid * grid + 1;
        let positions =
            Tensor::<1, Int>::arange(0..tokens as i64, &patches.device()).reshape([1, tokens]);
        let x = Tensor::cat(vec![class, patches], 1) + e.position_embedding.forward(positions);
        let hidden_states = vm.encoder.forward(vm.pre_layrnorm.forward(x));
        let last = hidden_states[hidden_states.len() - 1].clone();
        let pooled: Tensor<2> = last
            .clone()
            .slice([0..batch, 0..1, 0..hidden])
            .reshape([batch, hidden]);
        let image_embeds = self
            .visual_projection
            .forward(vm.post_layernorm.forward(pooled));
        Ok(ClipVisionOutput {
            last_hidden_state: last.cast(DType::F32),
            hidden_states: hidden_states
                .into_iter()
                .map(|h| h.cast(DType::F32))
                .collect(),
            image_embeds: image_embeds.cast(DType::F32),
        })
    }
}
