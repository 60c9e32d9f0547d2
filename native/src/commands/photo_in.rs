//! `generate`'s photo flags: a photo to start from (`--image`), the part to repaint (`--mask`)
//! and how much of the schedule runs (`--strength`), read and checked before any model loads.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use consistentid_core::Error;
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::PhotoJob;
use consistentid_core::pipeline::photo::PhotoInput;

use crate::io::image::read_image;
use crate::io::tensors::file_name;

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
        }))
    }
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
