//! What a running generation reports: phases, steps, live previews, finished images, and the
//! caller's cancel check. The CLI prints them, the host streams them as server-sent events.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::face::likeness::Likeness;
use crate::image::RgbImage;
use crate::{Error, Result};

/// The phases of one request, in order (`Analyse` and `Parse` only with a face photo).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Face detection and the ArcFace embedding.
    Analyse,
    /// Face parsing (BiSeNet) and the facial regions.
    Parse,
    /// Prompt, ID and region embeddings.
    Encode,
    /// The denoising loop of one image.
    Denoise,
    /// VAE decoding of one image.
    Decode,
    /// The likeness of one image to the reference face (face detection + ArcFace).
    Score,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Analyse,
        Phase::Parse,
        Phase::Encode,
        Phase::Denoise,
        Phase::Decode,
        Phase::Score,
    ];

    /// The name people read on a terminal.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Analyse => "detect + ArcFace",
            Phase::Parse => "parse",
            Phase::Encode => "encode",
            Phase::Denoise => "denoise",
            Phase::Decode => "decode",
            Phase::Score => "face similarity",
        }
    }

    /// The API name (`analyse`, `parse`, …).
    pub fn name(self) -> &'static str {
        match self {
            Phase::Analyse => "analyse",
            Phase::Parse => "parse",
            Phase::Encode => "encode",
            Phase::Denoise => "denoise",
            Phase::Decode => "decode",
            Phase::Score => "score",
        }
    }
}

/// One finished image.
#[derive(Clone, Debug)]
pub struct GeneratedImage {
    /// 0-based position in the request.
    pub index: usize,
    /// Its own seed (the request's seed + index).
    pub seed: u64,
    pub image: RgbImage,
    /// The A1111-style `parameters` text (prompt, negative prompt, steps, sampler, …).
    pub parameters: String,
    /// Likeness to the reference face (ConsistentID; `None` for plain text-to-image).
    pub likeness: Option<Likeness>,
}

/// One of the N images a best-of-N request made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    pub seed: u64,
    /// ArcFace cosine similarity to the reference face (null: see the reason).
    pub face_similarity: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity_reason: Option<String>,
    /// Among the `num_outputs` returned.
    pub kept: bool,
}

/// Receives a generation's progress. Every method but [`Sink::image`] has a no-op default.
pub trait Sink {
    /// A phase begins (`image` is the image index for the per-image phases).
    fn phase_started(&mut self, _phase: Phase, _image: Option<usize>) {}
    /// The phase begun last ends.
    fn phase_finished(&mut self, _phase: Phase, _image: Option<usize>) {}
    /// Step `step` (1-based) of `total` of image `image` is done.
    fn step(&mut self, _image: usize, _step: usize, _total: usize) {}
    /// Whether to compute a preview at this step (the sink throttles).
    fn wants_preview(&mut self, _image: usize, _step: usize, _total: usize) -> bool {
        false
    }
    /// A small preview of the predicted final image (one pixel per latent).
    fn preview(&mut self, _image: usize, _step: usize, _preview: RgbImage) {}
    /// Something the user should know (several faces, truncated prompt, …).
    fn warning(&mut self, _text: &str) {}
    /// Facts worth logging (regions kept, the marked prompt).
    fn info(&mut self, _text: &str) {}
    /// Checked between steps: `true` stops the run with [`Error::Canceled`].
    fn cancelled(&mut self) -> bool {
        false
    }
    /// A finished image; an error (e.g. the file cannot be written) stops the run. With
    /// best-of-N, the kept images come after all N are made, best first (`index` is the rank).
    fn image(&mut self, image: &GeneratedImage) -> Result<()>;
    /// Best-of-N: the likeness of every candidate (in seed order) and whether it was kept;
    /// called once, before the kept images.
    fn candidates(&mut self, _candidates: &[Candidate]) {}
}

/// SD1.5 latent → RGB factors (ComfyUI's `latent_formats.SD15`): rows are latent channels,
/// columns R, G, B, applied to model-space latents.
pub const SD15_LATENT_RGB: [[f32; 3]; 4] = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
];

/// A preview of model-space latents `[1, 4, h, w]` as an `w × h` RGB image: the linear
/// latent → RGB map, clamped to [-1, 1], scaled to 0–255. No VAE.
pub fn latent_preview(latents: Tensor<4>) -> Result<RgbImage> {
    let [_, c, h, w] = latents.dims();
    if c != SD15_LATENT_RGB.len() {
        return Err(Error::InvalidRequest(format!(
            "previews need 4 latent channels, got {c}"
        )));
    }
    let values = read_f32(latents)?;
    let n = h * w;
    let mut data = vec![0u8; n * 3];
    for p in 0..n {
        for (out, col) in data[p * 3..p * 3 + 3].iter_mut().zip(0..3) {
            let v: f32 = (0..c)
                .map(|k| values[k * n + p] * SD15_LATENT_RGB[k][col])
                .sum();
            *out = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
        }
    }
    RgbImage::from_raw(w, h, data)
}

/// An image `[1, 3, H, W]` in [0, 1] as 8-bit RGB (`round(x * 255)`, as diffusers'
/// `numpy_to_pil`).
pub fn to_rgb8(image: Tensor<4>) -> Result<RgbImage> {
    let [_, c, h, w] = image.dims();
    if c != 3 {
        return Err(Error::InvalidRequest(format!(
            "expected an RGB image, got {c} channels"
        )));
    }
    // [1, 3, h, w] -> [h, w, 3]
    let values = read_f32(image.reshape([c, h, w]).permute([1, 2, 0]))?;
    let data = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    RgbImage::from_raw(w, h, data)
}

fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Readback(format!("{e:?}")))
}
