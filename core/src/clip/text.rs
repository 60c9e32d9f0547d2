//! The CLIP text transformer, as transformers 4.31 `models/clip/modeling_clip.py`
//! (`CLIPTextModel` → `CLIPTextTransformer`): token + position embeddings, pre-LN encoder
//! layers with causal self-attention, final layer norm.
//!
//! Field names equal the checkpoint keys (`text_model.encoder.layers.{i}.self_attn.q_proj`).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate, sigmoid};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use super::config::{ClipTextConfig, HiddenAct};
use crate::Result;
use crate::weights::{
    LoadSpec, WeightSource, find_weight_file, keymap, load_safetensors, read_config, single_file,
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
        let config = read_config(source, dir, ClipTextConfig::from_json)?;
        let weights = find_weight_file(source, dir, "model", variant)?;
        let mut model = Self::new(&config, device);
        load_safetensors(
            &mut model,
            source,
            &weights,
            &LoadSpec {
                remap: keymap::CLIP_TEXT_REMAP,
                ignore_unused: keymap::CLIP_TEXT_IGNORE,
                dtype,
            },
        )?;
        Ok(model)
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
            encoder: ClipEncoder {
                layers: (0..config.num_hidden_layers)
                    .map(|_| ClipEncoderLayer::new(config, device))
                    .collect(),
            },
            final_layer_norm: layer_norm(config, device),
        }
    }

    /// # Shapes
    /// - `input_ids`: `[batch, seq]` → states `[batch, seq, hidden]`
    pub fn forward(&self, input_ids: Tensor<2, Int>) -> ClipTextOutput {
        let mut x = self.embeddings.forward(input_ids);
        let mut hidden_states = Vec::with_capacity(self.encoder.layers.len() + 1);
        hidden_states.push(x.clone());
        for layer in &self.encoder.layers {
            x = layer.forward(x);
            hidden_states.push(x.clone());
        }
        ClipTextOutput {
            last_hidden_state: self.final_layer_norm.forward(x),
            hidden_states,
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

/// `CLIPEncoder`: the stack of layers.
#[derive(Module, Debug)]
pub struct ClipEncoder {
    pub layers: Vec<ClipEncoderLayer>,
}

/// `CLIPEncoderLayer`: pre-LN attention and MLP blocks with residuals.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    pub self_attn: ClipAttention,
    pub layer_norm1: LayerNorm,
    pub mlp: ClipMlp,
    pub layer_norm2: LayerNorm,
}

impl ClipEncoderLayer {
    fn new(config: &ClipTextConfig, device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let h = config.hidden_size;
        Self {
            self_attn: ClipAttention {
                q_proj: linear(h, h),
                k_proj: linear(h, h),
                v_proj: linear(h, h),
                out_proj: linear(h, h),
                num_heads: config.num_attention_heads,
            },
            layer_norm1: layer_norm(config, device),
            mlp: ClipMlp {
                fc1: linear(h, config.intermediate_size),
                fc2: linear(config.intermediate_size, h),
                act: config.hidden_act,
            },
            layer_norm2: layer_norm(config, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), true);
        x.clone() + self.mlp.forward(self.layer_norm2.forward(x))
    }
}

/// `CLIPAttention`: multi-head self-attention with separate q/k/v/out projections.
#[derive(Module, Debug)]
pub struct ClipAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub out_proj: Linear,
    #[module(skip)]
    pub num_heads: usize,
}

impl ClipAttention {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>, causal: bool) -> Tensor<3> {
        let [b, s, h] = x.dims();
        let heads = self.num_heads;
        // [b, s, h] -> [b, heads, s, h / heads]
        let split = |t: Tensor<3>| t.reshape([b, s, heads, h / heads]).swap_dims(1, 2);
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let options = AttentionModuleOptions {
            is_causal: causal,
            ..Default::default()
        };
        let out = attention(q, k, v, None, None, options);
        // [b, heads, s, d] -> [b, s, h]
        self.out_proj
            .forward(out.swap_dims(1, 2).reshape([b, s, h]))
    }
}

/// `CLIPMLP`: fc1 → activation → fc2.
#[derive(Module, Debug)]
pub struct ClipMlp {
    pub fc1: Linear,
    pub fc2: Linear,
    #[module(skip)]
    pub act: HiddenAct,
}

impl ClipMlp {
    /// # Shapes
    /// - `x`: `[batch, seq, hidden]` → same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.fc1.forward(x);
        let x = match self.act {
            HiddenAct::QuickGelu => x.clone() * sigmoid(x * 1.702),
            HiddenAct::Gelu => gelu(x),
            HiddenAct::GeluTanh => gelu_approximate(x),
        };
        self.fc2.forward(x)
    }
}

fn layer_norm(config: &ClipTextConfig, device: &Device) -> LayerNorm {
    LayerNormConfig::new(config.hidden_size)
        .with_epsilon(config.layer_norm_eps)
        .init(device)
}
