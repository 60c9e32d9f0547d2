//! ArcFace recognition (insightface `w600k_r50.onnx`, `glintr100.onnx`): aligned 112×112 crop
//! → 512-d embedding, as insightface's `ArcFaceONNX.get`.

use burn::tensor::Device;

use super::ChannelOrder;
use super::align::norm_crop;
use crate::image::RgbImage;
use crate::onnx::{FloatValue, OnnxModel, OnnxSession, Value};
use crate::{Error, Result};

/// An embedding and its L2-normalised form (`normed_embedding`).
#[derive(Clone, Debug)]
pub struct FaceEmbedding {
    pub embedding: Vec<f32>,
    pub normed: Vec<f32>,
}

/// A loaded ArcFace model.
pub struct ArcFace {
    session: OnnxSession,
    input: String,
    /// Crop side (112 for insightface's models), from the graph input.
    pub size: usize,
    mean: f32,
    std: f32,
    pub channel_order: ChannelOrder,
}

impl ArcFace {
    pub fn new(model: OnnxModel, device: &Device) -> Result<Self> {
        let first = model
            .inputs
            .first()
            .ok_or_else(|| Error::InvalidRequest("the recognition graph has no input".into()))?;
        let size = match first.dims.as_slice() {
            [_, _, Some(s), _] => *s,
            _ => 112,
        };
        let input = first.name.clone();
        // insightface: graphs that start with their own Sub and Mul take raw pixels.
        let head = &model.nodes[..model.nodes.len().min(8)];
        let has = |p: &[&str]| head.iter().any(|n| p.iter().any(|q| n.name.starts_with(q)));
        let (mean, std) = if has(&["Sub", "_minus"]) && has(&["Mul", "_mul"]) {
            (0.0, 1.0)
        } else {
            (127.5, 127.5)
        };
        Ok(Self {
            session: OnnxSession::new(model, device)?,
            input,
            size,
            mean,
            std,
            channel_order: ChannelOrder::default(),
        })
    }

    /// The aligned crop in the channel order the network sees.
    pub fn align(&self, img: &RgbImage, landmarks: &[[f32; 2]]) -> Result<RgbImage> {
        if landmarks.len() != 5 {
            return Err(Error::InvalidRequest(format!(
                "alignment needs 5 landmarks, got {}",
                landmarks.len()
            )));
        }
        let crop = norm_crop(img, landmarks, self.size);
        Ok(match self.channel_order {
            ChannelOrder::Corrected => crop,
            ChannelOrder::Official => crop.swap_rb(),
        })
    }

    /// Embeds an aligned crop (already in network channel order).
    pub fn embed(&self, aligned: &RgbImage) -> Result<FaceEmbedding> {
        let blob: Vec<f32> = aligned
            .to_planar()
            .into_iter()
            .map(|v| (v - self.mean) * (1.0 / self.std))
            .collect();
        let x = FloatValue::from_host(
            vec![1, 3, aligned.height, aligned.width],
            blob,
            self.session.device(),
        );
        let outputs = self
            .session
            .run(vec![(self.input.clone(), Value::Float(x))])?;
        let embedding = match outputs.into_iter().next() {
            Some((_, Value::Float(f))) => f.to_host(),
            _ => {
                return Err(Error::InvalidRequest(
                    "the recognition graph gave no float output".into(),
                ));
            }
        };
        let norm = embedding
            .iter()
            .map(|v| f64::from(*v).powi(2))
            .sum::<f64>()
            .sqrt();
        let normed = embedding
            .iter()
            .map(|&v| (f64::from(v) / norm.max(1e-12)) as f32)
            .collect();
        Ok(FaceEmbedding { embedding, normed })
    }
}
