//! A whole CLIP (transformers `CLIPModel`, e.g. `openai/clip-vit-large-patch14`): the tokenizer,
//! the text tower with `text_projection` and the vision tower with `visual_projection`, in one
//! folder (`config.json` with `text_config` / `vision_config`, `model.safetensors`, the tokenizer
//! files). What CLIP-T and CLIP-I scores need: both towers' projected embeddings.

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::image_processor;
use super::{ClipTextModel, ClipTokenizer, ClipVisionModelWithProjection};
use crate::image::RgbImage;
use crate::tensor_io::TensorFile;
use crate::weights::{WeightSource, find_weight_file};
use crate::{Error, Result};

/// Both towers and the text projection.
pub struct ClipModel {
    pub tokenizer: ClipTokenizer,
    pub text: ClipTextModel,
    /// `text_projection.weight`, `[projection, hidden]` row-major (torch layout).
    pub text_projection: Vec<f32>,
    pub projection_dim: usize,
    pub vision: ClipVisionModelWithProjection,
}

fn readback<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Readback(format!("{e:?}")))
}

impl ClipModel {
    /// Loads the folder `dir` of `source` (f32).
    pub fn load(source: &dyn WeightSource, dir: &str, device: &Device) -> Result<Self> {
        let text = ClipTextModel::load(source, dir, None, DType::F32, device)?;
        let vision = ClipVisionModelWithProjection::load(source, dir, None, DType::F32, device)?;
        let tokenizer = ClipTokenizer::from_source(source, dir)?;
        let path = find_weight_file(source, dir, "model", None)?;
        let bytes = source.read(&path)?;
        let file = TensorFile::parse(&source.display_path(&path), &bytes)?;
        let (text_projection, shape) = file.f32("text_projection.weight")?;
        let hidden = text.text_model.final_layer_norm.gamma.val().dims()[0];
        if shape.len() != 2 || shape[1] != hidden {
            return Err(Error::WeightMismatch {
                path: source.display_path(&path),
                reason: format!(
                    "text_projection.weight is {shape:?}, expected [projection, {hidden}]"
                ),
            });
        }
        Ok(Self {
            tokenizer,
            text,
            projection_dim: shape[0],
            text_projection,
            vision,
        })
    }

    /// The projected text embeddings (`CLIPModel.get_text_features`) of `prompts`: the final
    /// hidden state at each prompt's first end-of-text token, times `text_projection`.
    pub fn text_embeds(&self, prompts: &[&str], device: &Device) -> Result<Vec<Vec<f32>>> {
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        let len = self.tokenizer.model_max_length();
        let ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| self.tokenizer.encode_padded(p, len))
            .collect();
        let hidden = readback(self.text.forward_ids(&ids, device).last_hidden_state)?;
        let h = self.text_projection.len() / self.projection_dim;
        let eos = self.tokenizer.eos_id();
        Ok(ids
            .iter()
            .enumerate()
            .map(|(b, row)| {
                let at = row.iter().position(|&t| t == eos).unwrap_or(row.len() - 1);
                let pooled = &hidden[(b * row.len() + at) * h..][..h];
                self.text_projection
                    .chunks(h)
                    .map(|w| w.iter().zip(pooled).map(|(a, x)| a * x).sum())
                    .collect()
            })
            .collect())
    }

    /// The projected image embeddings (`get_image_features`) of `images`, preprocessed as
    /// `CLIPImageProcessor` (shortest side, bicubic, centre crop, normalised).
    pub fn image_embeds(&self, images: &[RgbImage], device: &Device) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.vision.image_size();
        let mut pixels = Vec::with_capacity(images.len() * 3 * size * size);
        for img in images {
            pixels.extend(image_processor::preprocess(img, size));
        }
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pixels, [images.len(), 3, size, size]),
            device,
        );
        let embeds = self.vision.forward(x)?.image_embeds;
        let dim = embeds.dims()[1];
        Ok(readback(embeds)?.chunks(dim).map(<[f32]>::to_vec).collect())
    }
}
