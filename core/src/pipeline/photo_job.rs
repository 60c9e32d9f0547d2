//! A job's photo and ControlNets as the engine runs them: their checks against the model,
//! their PNG parameters, and the photo's latents drawn from their own stream of the seed.

use std::sync::Arc;

use super::photo::{Control, PhotoInput, PhotoLatents, control_image};
use super::request::GenerationRequest;
use super::txt2img::StableDiffusion;
use crate::controlnet::ControlNetModel;
use crate::error::FieldError;
use crate::image::RgbImage;
use crate::rng::NoiseRng;
use crate::{Error, Result};

/// A photo to start from, with the names it is reported under (file names, never paths), and
/// the ControlNets that guide the run.
#[derive(Clone, Debug)]
pub struct PhotoJob {
    pub input: PhotoInput,
    pub image_name: String,
    pub mask_name: Option<String>,
    pub controls: Vec<ControlJob>,
}

/// One ControlNet of a job: the model, its control image (any size: resized to the output)
/// and diffusers' `controlnet_conditioning_scale`, `control_guidance_start` / `_end`.
#[derive(Clone, Debug)]
pub struct ControlJob {
    pub net: Arc<ControlNetModel>,
    /// The ControlNet's name in messages and PNG parameters (its folder's name).
    pub name: String,
    pub image: RgbImage,
    pub scale: f64,
    pub start: f64,
    pub end: f64,
}

impl PhotoJob {
    /// What the PNG parameters say of it (A1111's `Denoising strength`).
    pub(crate) fn parameters(&self) -> String {
        let mask = self
            .mask_name
            .as_ref()
            .map(|m| format!(", Mask: {m}"))
            .unwrap_or_default();
        let controls: String = self
            .controls
            .iter()
            .map(|c| {
                format!(
                    ", ControlNet: {} (weight {}, {}–{})",
                    c.name, c.scale, c.start, c.end
                )
            })
            .collect();
        format!(
            ", Init image: {}{mask}, Denoising strength: {}{controls}",
            self.image_name, self.input.strength
        )
    }

    /// Its ControlNets for the denoising loop, their images at the output size.
    pub(crate) fn controls(
        &self,
        width: usize,
        height: usize,
        device: &burn::tensor::Device,
    ) -> Vec<Control<'_>> {
        self.controls
            .iter()
            .map(|c| Control {
                net: &c.net,
                image: control_image(&c.image, width, height, device),
                scale: c.scale,
                start: c.start,
                end: c.end,
            })
            .collect()
    }

    /// Checks the photo and the ControlNets against the model.
    pub fn check(&self, sd: &StableDiffusion, steps: usize) -> Result<()> {
        sd.check_photo(&self.input, steps)?;
        for c in &self.controls {
            c.net.check_fits(&sd.unet, &c.name)?;
            let window = (0.0..=1.0).contains(&c.start) && c.end <= 1.0 && c.start < c.end;
            if !(c.scale.is_finite() && c.scale >= 0.0 && window) {
                return Err(Error::InvalidFields(vec![FieldError::new(
                    "controlnet",
                    format!(
                        "{}: the scale must be a number from 0 and the guidance window 0 ≤ start < end ≤ 1 (got {}, {}–{})",
                        c.name, c.scale, c.start, c.end
                    ),
                )]));
            }
        }
        Ok(())
    }
}

/// Salt of the stream the photo's VAE samples are drawn from (apart from the images' noise).
const PHOTO_STREAM: u64 = 0x9d0f_0a11_ce5e_ed01;

/// The photo's latents for a job of seed `seed`, drawn from their own stream.
pub(crate) fn photo_latents(
    sd: &StableDiffusion,
    photo: Option<&PhotoJob>,
    r: &GenerationRequest,
    seed: u64,
) -> Result<Option<PhotoLatents>> {
    let Some(photo) = photo else { return Ok(None) };
    let mut rng = NoiseRng::new(seed ^ PHOTO_STREAM);
    let device = sd.device.clone();
    sd.photo_latents(&photo.input, r.width, r.height, &mut |_, shape| {
        rng.tensor(shape, &device)
    })
    .map(Some)
}
