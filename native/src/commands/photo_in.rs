//! `generate`'s photo flags: a photo to start from (`--image`), the part to repaint (`--mask`)
//! and how much of the schedule runs (`--strength`), read and checked before any model loads.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use std::sync::Arc;

use consistentid_core::Error;
use consistentid_core::face::FaceChoice;
use consistentid_core::face::analysis::FaceAnalysis;
use consistentid_core::image::RgbImage;
use consistentid_core::image::canny::canny_image;
use consistentid_core::pipeline::into::{IntoJob, IntoSettings, Region};
use consistentid_core::pipeline::photo::PhotoInput;
use consistentid_core::pipeline::{ControlJob, PhotoJob};

use crate::commands::args::parse_face_choice;
use crate::io::image::read_image;
use crate::io::tensors::file_name;
use crate::models::load_controlnet;
use crate::source::DirSource;

/// The photo flags of `generate`.
#[derive(Debug, Args)]
pub struct PhotoArgs {
    /// A photo to start from instead of noise: repainted where `--mask` is white, or as a whole
    /// (image-to-image) without a mask. With `--face` and `--mask` alone, the face photo itself
    /// is inpainted, as the official inpainting pipeline does.
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
    /// White repaints, black keeps; any size (resized to the output as diffusers does).
    #[arg(long, value_name = "IMG")]
    pub mask: Option<PathBuf>,
    /// The share of the schedule that runs, from the photo noised to its level, in (0, 1]
    /// (default 1 with a mask: inpainting from pure noise; 0.8 without, as diffusers).
    #[arg(long)]
    pub strength: Option<f64>,
    /// A ControlNet folder (diffusers layout: config.json + diffusion_pytorch_model.safetensors)
    /// guiding a photo run; repeat the flag for several (their residuals add up).
    #[arg(long, value_name = "DIR")]
    pub controlnet: Vec<PathBuf>,
    /// Each ControlNet's control image: a file, or `canny` for the Canny edges (100, 200) of the
    /// photo, equal to OpenCV's. One per --controlnet.
    #[arg(long, value_name = "IMG|canny")]
    pub control: Vec<String>,
    /// Each ControlNet's conditioning scale (default 0.5, the official pipeline's); one value
    /// for all or one per --controlnet.
    #[arg(long, value_name = "F")]
    pub control_scale: Vec<f64>,
    /// The share of the run before which each ControlNet is left out (default 0).
    #[arg(long, value_name = "F")]
    pub control_start: Vec<f64>,
    /// The share of the run after which each ControlNet is left out (default 1).
    #[arg(long, value_name = "F")]
    pub control_end: Vec<f64>,
    /// Put the --face identity into this photo: its face is found, parsed and repainted on a
    /// square crop at --width (512), and pasted back; every pixel outside the mask stays the
    /// photo's. The result has the photo's size and orientation (PNG, lossless). --mask (at
    /// the photo's size) replaces the automatic mask.
    #[arg(long, value_name = "IMG", requires = "face", conflicts_with = "image")]
    pub into: Option<PathBuf>,
    /// Which face of the --into photo (as --face-index: best, largest, an index, or a box).
    #[arg(long, default_value = "best", value_parser = parse_face_choice)]
    pub target_face: FaceChoice,
    /// The regions of the target face repainted, from face, hair, neck.
    #[arg(long, value_delimiter = ',', default_value = "face", value_parser = ["face", "hair", "neck"])]
    pub regions: Vec<String>,
    /// Grow the automatic mask by this many pixels of the photo.
    #[arg(long, default_value_t = 8, value_name = "PX")]
    pub mask_dilate: usize,
    /// Blend the result in over this many pixels of the photo at the mask's edge.
    #[arg(long, default_value_t = 8, value_name = "PX")]
    pub mask_feather: usize,
    /// The crop around the target face: its larger side plus this share of it on each side.
    #[arg(long, default_value_t = 0.6, value_name = "F")]
    pub crop_margin: f64,
}

/// A control image as the flags give it.
#[derive(Debug)]
pub enum ControlImage {
    File(RgbImage),
    /// The Canny edges of the run's photo (for --into, of its crop).
    Canny,
}

/// One ControlNet as the flags give it, before its model is loaded.
#[derive(Debug)]
pub struct ControlFlags {
    pub dir: PathBuf,
    pub image: ControlImage,
    pub scale: f64,
    pub start: f64,
    pub end: f64,
}

/// Output sides for a photo of `width` × `height` when none are asked: its aspect kept,
/// scaled down to at most 512 × 768 pixels' area, multiples of 8.
pub fn default_size(width: usize, height: usize) -> (usize, usize) {
    let scale = ((512.0 * 768.0) / (width as f64 * height as f64))
        .sqrt()
        .min(1.0);
    let side = |v: usize| (((v as f64 * scale) as usize) / 8 * 8).max(8);
    (side(width), side(height))
}

impl PhotoArgs {
    /// The photo job the flags ask for (`face` is the `--face` photo, inpainted when `--mask`
    /// comes without `--image`), checked for `steps` steps, or `None`.
    pub fn job(&self, face: Option<(&RgbImage, &Path)>, steps: usize) -> Result<Option<PhotoJob>> {
        if self.into.is_some() {
            // The crop and its mask come from the engine (`into_job`); the strength is checked.
            return self.strength_only(steps).map(|_| None);
        }
        let (image, image_name) = match (&self.image, &self.mask, face) {
            (Some(path), _, _) => (read_image(path)?, file_name(path)),
            (None, Some(_), Some((face, path))) => (face.clone(), file_name(path)),
            (None, Some(_), None) => bail!("--mask needs --image (or --face, to inpaint it)"),
            (None, None, _) => {
                if self.strength.is_some() {
                    bail!("--strength needs --image or --mask");
                }
                return Ok(None);
            }
        };
        let mask = self.mask.as_ref().map(|p| read_image(p)).transpose()?;
        let strength = self
            .strength
            .unwrap_or(if mask.is_some() { 1.0 } else { 0.8 });
        let input = PhotoInput {
            image,
            mask,
            strength,
        };
        input.check(steps).map_err(flag_errors)?;
        if let Some(m) = &input.mask
            && (m.width, m.height) != (input.image.width, input.image.height)
        {
            eprintln!(
                "note: the mask is {}×{} and the photo {}×{}: each is resized to the output size on its own (as diffusers does)",
                m.width, m.height, input.image.width, input.image.height
            );
        }
        Ok(Some(PhotoJob {
            input,
            image_name,
            mask_name: self.mask.as_deref().map(file_name),
            controls: Vec::new(),
        }))
    }

    fn strength_only(&self, steps: usize) -> Result<()> {
        let probe = PhotoInput {
            image: RgbImage {
                width: 1,
                height: 1,
                data: vec![0; 3],
            },
            mask: None,
            strength: self.strength.unwrap_or(1.0),
        };
        probe.check(steps).map_err(flag_errors)
    }

    /// The --into target as the engine takes it, or `None` without --into.
    pub fn into_job(&self) -> Result<Option<IntoJob>> {
        let Some(path) = &self.into else {
            return Ok(None);
        };
        if !(self.crop_margin.is_finite() && (0.0..=4.0).contains(&self.crop_margin)) {
            bail!(
                "--crop-margin must be from 0 to 4 (got {})",
                self.crop_margin
            );
        }
        let photo = read_image(path)?;
        let mask = match &self.mask {
            Some(m) => {
                let mask = read_image(m)?;
                if (mask.width, mask.height) != (photo.width, photo.height) {
                    bail!(
                        "--mask with --into must have the photo's size ({}×{}), not {}×{}",
                        photo.width,
                        photo.height,
                        mask.width,
                        mask.height
                    );
                }
                Some(mask)
            }
            None => None,
        };
        Ok(Some(IntoJob {
            photo,
            name: file_name(path),
            choice: self.target_face,
            mask,
            settings: IntoSettings {
                regions: self
                    .regions
                    .iter()
                    .filter_map(|r| Region::from_name(r))
                    .collect(),
                dilate: self.mask_dilate,
                feather: self.mask_feather,
                margin: self.crop_margin,
            },
            strength: self.strength.unwrap_or(1.0),
        }))
    }

    /// The ControlNets the flags ask for (`has_photo`: the run starts from a photo), their
    /// control image files read, every number checked; none without --controlnet.
    pub fn controls(&self, has_photo: bool) -> Result<Vec<ControlFlags>> {
        let n = self.controlnet.len();
        let extra = !self.control.is_empty()
            || !self.control_scale.is_empty()
            || !self.control_start.is_empty()
            || !self.control_end.is_empty();
        if n == 0 {
            if extra {
                bail!(
                    "--control, --control-scale, --control-start and --control-end need --controlnet"
                );
            }
            return Ok(Vec::new());
        }
        if !has_photo {
            bail!(
                "--controlnet needs --image, --mask or --into (the official ControlNet pipeline inpaints a photo)"
            );
        }
        if self.control.len() != n {
            bail!(
                "--control: one control image (a file or `canny`) per --controlnet ({n} given, {} images)",
                self.control.len()
            );
        }
        let pick = |flag: &str, values: &[f64], default: f64| -> Result<Vec<f64>> {
            match values.len() {
                0 => Ok(vec![default; n]),
                1 => Ok(vec![values[0]; n]),
                k if k == n => Ok(values.to_vec()),
                k => bail!("{flag}: one value, or one per --controlnet ({n}), not {k}"),
            }
        };
        let scales = pick("--control-scale", &self.control_scale, 0.5)?;
        let starts = pick("--control-start", &self.control_start, 0.0)?;
        let ends = pick("--control-end", &self.control_end, 1.0)?;
        let mut out = Vec::with_capacity(n);
        for (i, dir) in self.controlnet.iter().enumerate() {
            let (scale, start, end) = (scales[i], starts[i], ends[i]);
            if !(scale.is_finite() && (0.0..=MAX_CONTROL_SCALE).contains(&scale)) {
                bail!("--control-scale must be from 0 to {MAX_CONTROL_SCALE} (got {scale})");
            }
            if !((0.0..=1.0).contains(&start) && end <= 1.0 && start < end) {
                bail!(
                    "--control-start and --control-end must satisfy 0 ≤ start < end ≤ 1 (got {start}, {end})"
                );
            }
            let single = dir.is_file() && dir.extension().is_some_and(|e| e == "safetensors");
            if !single && !dir.join("config.json").is_file() {
                bail!(
                    "--controlnet {}: not a ControlNet folder (no config.json) or a single .safetensors file",
                    dir.display()
                );
            }
            let image = match self.control[i].as_str() {
                "canny" => ControlImage::Canny,
                path => ControlImage::File(read_image(Path::new(path))?),
            };
            out.push(ControlFlags {
                dir: dir.clone(),
                image,
                scale,
                start,
                end,
            });
        }
        Ok(out)
    }
}

/// An automatic --into mask finds the target face with buffalo_l's detector: refused before
/// loading when the model folder lacks it.
pub fn check_detector(into: &IntoJob, model: &Path) -> Result<()> {
    if into.mask.is_none() && FaceAnalysis::find(&DirSource::open(model)?).is_none() {
        bail!(
            "--into finds the face with insightface's buffalo_l detector (det_10g.onnx, w600k_r50.onnx), which {} lacks: `consistentid fetch` adds it, or give a --mask",
            model.display()
        );
    }
    Ok(())
}

/// Conditioning scales beyond this only burn the image.
const MAX_CONTROL_SCALE: f64 = 5.0;

/// Loads each ControlNet (in the model's float type) into the job.
pub fn load_controls(
    flags: Vec<ControlFlags>,
    job: &mut PhotoJob,
    dtype: burn::tensor::DType,
    device: &burn::tensor::Device,
) -> Result<()> {
    for c in flags {
        let net = load_controlnet(&c.dir, dtype, device)
            .map_err(|e| anyhow::anyhow!("--controlnet {}: {e}", c.dir.display()))?;
        let image = match c.image {
            ControlImage::File(image) => image,
            ControlImage::Canny => canny_image(&job.input.image, 100.0, 200.0),
        };
        job.controls.push(ControlJob {
            net: Arc::new(net),
            name: file_name(&c.dir),
            image,
            scale: c.scale,
            start: c.start,
            end: c.end,
        });
    }
    Ok(())
}

/// Field errors named by their flags (`--strength must be …`).
pub fn flag_errors(e: Error) -> anyhow::Error {
    match e {
        Error::InvalidFields(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| format!("--{} {}", f.field, f.message))
                .collect();
            anyhow::anyhow!("{}", parts.join("; "))
        }
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sizes_keep_the_aspect_within_the_area() {
        assert_eq!(default_size(512, 512), (512, 512));
        assert_eq!(default_size(100, 60), (96, 56));
        let (w, h) = default_size(4000, 3000);
        assert!(w * h <= 512 * 768 && w % 8 == 0 && h % 8 == 0, "{w}×{h}");
        assert_eq!((w as f64 / h as f64 * 10.0).round(), 13.0);
    }
}
