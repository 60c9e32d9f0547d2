//! `generate`'s photo flags: a photo to start from (`--image`), the part to repaint (`--mask`)
//! and how much of the schedule runs (`--strength`), read and checked before any model loads.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use std::sync::Arc;

use consistentid_core::Error;
use consistentid_core::controlnet::ControlNetModel;
use consistentid_core::image::RgbImage;
use consistentid_core::image::canny::canny_image;
use consistentid_core::pipeline::photo::PhotoInput;
use consistentid_core::pipeline::{ControlJob, PhotoJob};

use crate::io::image::read_image;
use crate::io::tensors::file_name;
use crate::source::DirSource;

/// The photo flags of `generate`.
#[derive(Debug, Args, Default)]
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
}

/// One ControlNet as the flags give it, before its model is loaded.
#[derive(Debug)]
pub struct ControlFlags {
    pub dir: PathBuf,
    pub image: RgbImage,
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

    /// The ControlNets the flags ask for, their control images read (or made from `photo`),
    /// every number checked; none without --controlnet.
    pub fn controls(&self, photo: Option<&RgbImage>) -> Result<Vec<ControlFlags>> {
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
        let Some(photo) = photo else {
            bail!(
                "--controlnet needs --image or --mask (the official ControlNet pipeline inpaints a photo)"
            );
        };
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
            if !dir.join("config.json").is_file() {
                bail!(
                    "--controlnet {}: not a ControlNet folder (no config.json)",
                    dir.display()
                );
            }
            let image = match self.control[i].as_str() {
                "canny" => canny_image(photo, 100.0, 200.0),
                path => read_image(Path::new(path))?,
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
        let source = DirSource::open(&c.dir)?;
        let net = ControlNetModel::load(&source, "", None, dtype, device)
            .map_err(|e| anyhow::anyhow!("--controlnet {}: {e}", c.dir.display()))?;
        job.controls.push(ControlJob {
            net: Arc::new(net),
            name: file_name(&c.dir),
            image: c.image,
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
