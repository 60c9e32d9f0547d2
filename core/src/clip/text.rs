//! The CLIP text transformer, as transformers 4.31 `models/clip/modeling_clip.py`
//! (`CLIPTextModel` → `CLIPTextTransformer`): token + position embeddings, pre-LN encoder
//! layers with causal self-attention, final layer norm.
//!
//! Field names equal the checkpoint keys (`text_model.encoder.layers.{i}.self_attn.q_proj`).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use super::config::ClipTextConfig;
use super::encoder::{ClipEncoder, EncoderDims, layer_norm};
use crate::Result;
use crate::weights::{
    LoadSpec, WeightSource, keymap, load_folder_model, load_safetensors, single_file,
};

/// `CLIPTextModel`: the checkpoint's top level holds only `text_model`.
#[derive(Module, Debug)]
pub struct ClipTextModel {
    pub text_model: ClipTextTransformer,
}

/// What the text encoder returns.
pub struct ClipTextOutput {
    /// Output of the final layer norm, `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<3>,
    /// `hidden_states` as transformers returns them: the embeddings, then each layer's output
    /// (before the final layer norm), `num_hidden_layers + 1` tensors of `[batch, seq, hidden]`.
    pub hidden_states: Vec<Tensor<3>>,
}

impl ClipTextOutput {
    /// `hidden_states[-2]`: the penultimate layer's output, without the final layer norm
    /// (what "clip skip" and SDXL read).
    pub fn penultimate(&self) -> Tensor<3> {
        self.hidden_states[self.hidden_states.len() - 2].clone()
    }
}

impl ClipTextModel {
    /// Builds a randomly initialised model of `config`'s dimensions.
    pub fn new(config: &ClipTextConfig, device: &Device) -> Self {
        Self {
            text_model: ClipTextTransformer::new(config, device),
        }
    }

    /// Loads `{dir}/config.json` and `{dir}/model[.variant].safetensors` (f32, f16 or bf16 on
    /// disk; parameters cast to `dtype`).
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
            ClipTextConfig::from_json,
            |config| Self::new(config, device),
            &LoadSpec {
                remap: keymap::CLIP_TEXT_REMAP,
                ignore_unused: keymap::CLIP_TEXT_IGNORE,
                dtype,
            },
        )
    }

    /// Loads the text encoder of a single-file SD1.x checkpoint
    /// (`cond_stage_model.transformer.*` keys) with the given config ([`ClipTextConfig::sd15`]).
    pub fn load_single_file(
        source: &dyn WeightSource,
        path: &str,
        config: &ClipTextConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut ignore = single_file::other_parts(single_file::TEXT_PREFIX);
        ignore.extend_from_slice(keymap::CLIP_TEXT_IGNORE);
        let mut model = Self::new(config, device);
        let spec = LoadSpec {
            remap: keymap::CLIP_TEXT_REMAP,
            ignore_unused: &ignore,
            dtype,
        };
        load_safetensors(&mut model, source, path, &spec)?;
        Ok(model)
    }

    /// Encodes token ids.
    ///
    /// # Shapes
    /// - `input_ids`: `[batch, seq]` with `seq <= max_position_embeddings`
    /// - returns hidden states of `[batch, seq, hidden_size]`
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> ClipTextOutput {
        self.text_model.forward(input_ids)
    }

    /// Convenience: encodes one or more id rows given as plain integers.
    pub fn forward_ids(&self, ids: &[Vec<u32>], device: &Device) -> ClipTextOutput {
        let seq = ids.first().map_or(0, Vec::len);
        let flat: Vec<i64> = ids.iter().flatten().map(|&i| i as i64).collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(flat, [ids.len(), seq]), device);
        self.forward(input)
    }
}

/// `CLIPTextTransformer`.
#[derive(Module, Debug)]
pub struct ClipTextTransformer {
    pub embeddings: ClipTextEmbeddings,
    pub encoder: ClipEncoder,
    pub final_layer_norm: LayerNorm,
}

impl ClipTextTransformer {
    fn new(config: &ClipTextConfig, device: &Device) -> Self {
        Self {
            embeddings: ClipTextEmbeddings {
                token_embedding: EmbeddingConfig::new(config.vocab_size, config.hidden_size)
                    .init(device),
                position_embedding: EmbeddingConfig::new(
                    config.max_position_embeddings,
                    config.hidden_size,
                )
                .init(device),
            },
            encoder: ClipEncoder::new(&EncoderDims::from(config), true, device),
            final_layer_norm: layer_norm(config.hidden_size, config.layer_norm_eps, device),
        }
    }

    /// # Shapes
    /// - `input_ids`: `[batch, seq]` → states `[batch, seq, hidden]`
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> ClipTextOutput {
        // The tower runs in its weights' float type; what it returns is f32.
        let hidden_states = self.encoder.forward(self.embeddings.forward(input_ids));
        let last = hidden_states[hidden_states.len() - 1].clone();
        ClipTextOutput {
            last_hidden_state: self.final_layer_norm.forward(last).cast(DType::F32),
            hidden_states: hidden_states
                .into_iter()
                .map(|h| h.cast(DType::F32))
                .collect(),
        }
    }
}

/// `CLIPTextEmbeddings`: learned token and absolute position embeddings.
#[derive(Module, Debug)]
pub struct ClipTextEmbeddings {
    pub token_embedding: Embedding,
    pub position_embedding: Embedding,
}

impl ClipTextEmbeddings {
    /// # Shapes
    /// - `input_ids`: `[batch, seq]` → `[batch, seq, hidden]`
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        // Positions 0..seq, the `position_ids` buffer upstream.
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        self.token_embedding.forward(input_ids) + self.position_embedding.forward(positions)
    }
}
