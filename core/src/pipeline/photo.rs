//! A given photo as the starting point: inpainting as the official
//! `StableDiffusionInpaintConsistentIDPipeline` (diffusers 0.23 `StableDiffusionInpaintPipeline`:
//! `prepare_latents`, `prepare_mask_latents`, `get_timesteps`) and image-to-image as diffusers'
//! `StableDiffusionImg2ImgPipeline`. The photo and its mask become latents here; the denoising
//! loop ([`super::denoise`]) starts from them, feeds a 9-channel UNet the mask and the masked
//! photo, and puts a 4-channel UNet's unmasked latents back after each step.

use burn::tensor::{Tensor, TensorData};

use super::txt2img::StableDiffusion;
use crate::controlnet::ControlNetModel;
use crate::error::FieldError;
use crate::image::{RgbImage, vae_processor};
use crate::{Error, Result};

/// The photo, its mask and how much of the schedule runs, as a person gives them.
#[derive(Clone, Debug)]
pub struct PhotoInput {
    pub image: RgbImage,
    /// White repaints, black keeps (binarised at 0.5 after the resize, as diffusers); `None`
    /// is image-to-image (everything is repainted from the noised photo).
    pub mask: Option<RgbImage>,
    /// In (0, 1]: the last `int(steps · strength)` steps run from the photo noised to their
    /// level; 1 starts inpainting from pure noise.
    pub strength: f64,
}

/// The photo in latent space, shared by every image of a job.
#[derive(Clone, Debug)]
pub struct PhotoLatents {
    /// `[1, C, h, w]`: the photo's sampled VAE latents times the scaling factor (the start
    /// below strength 1 and what a 4-channel UNet's unmasked latents are reset to).
    pub image: Option<Tensor<4>>,
    /// `[1, 1, h, w]`: the mask at latent size (nearest), 1 where repainted; `None` for
    /// image-to-image.
    pub mask: Option<Tensor<4>>,
    /// `[1, C, h, w]`: the latents of the photo with the masked part black (a 9-channel
    /// UNet's extra input).
    pub masked_image: Option<Tensor<4>>,
    pub strength: f64,
}

/// One ControlNet in a run (diffusers' `controlnet_conditioning_scale`,
/// `control_guidance_start`, `control_guidance_end`).
#[derive(Clone, Debug)]
pub struct Control<'a> {
    pub net: &'a ControlNetModel,
    /// `[1, 3, H, W]` in [0, 1] at the output size ([`control_image`]).
    pub image: Tensor<4>,
    pub scale: f64,
    /// The share of the run before which, and after which, it is left out.
    pub start: f64,
    pub end: f64,
}

impl Control<'_> {
    /// Whether it acts at step `k` of `total` (`1 − (k/total < start or (k+1)/total > end)`).
    pub fn active(&self, k: usize, total: usize) -> bool {
        let (k, total) = (k as f64, total as f64);
        !(k / total < self.start || (k + 1.0) / total > self.end)
    }
}

/// A control image as diffusers' `control_image_processor` prepares it: Pillow LANCZOS to the
/// output size, ÷255, no normalisation (`[1, 3, height, width]` in [0, 1]).
pub fn control_image(
    img: &RgbImage,
    width: usize,
    height: usize,
    device: &burn::tensor::Device,
) -> Tensor<4> {
    let planar = vae_processor::control(img, width, height);
    Tensor::from_data(TensorData::new(planar, [1, 3, height, width]), device)
}

/// Which VAE sample a standard-normal draw is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoDraw {
    /// The photo's latents (drawn first, as diffusers).
    Image,
    /// The masked photo's latents.
    MaskedImage,
}

impl PhotoInput {
    /// What can be checked without a model: the strength (in (0, 1], and at least one of
    /// `steps` steps), non-empty images, a mask that repaints something.
    pub fn check(&self, steps: usize) -> Result<()> {
        let s = self.strength;
        let mut errors = Vec::new();
        if !(s > 0.0 && s <= 1.0) {
            errors.push(FieldError::new(
                "strength",
                format!("must be in (0, 1] (got {s})"),
            ));
        } else if (steps as f64 * s) < 1.0 {
            errors.push(FieldError::new(
                "strength",
                format!("{s} of {steps} steps is no step at all: raise the strength or the steps"),
            ));
        }
        if let Some(mask) = &self.mask
            && mask.data.iter().all(|&v| v == 0)
        {
            errors.push(FieldError::new(
                "mask",
                "is black everywhere: nothing would be repainted",
            ));
        }
        if !errors.is_empty() {
            return Err(Error::InvalidFields(errors));
        }
        for (name, img) in [("image", Some(&self.image)), ("mask", self.mask.as_ref())] {
            if let Some(img) = img
                && (img.width == 0 || img.height == 0)
            {
                return Err(Error::Image {
                    name: name.into(),
                    reason: "empty image".into(),
                });
            }
        }
        Ok(())
    }
}

impl PhotoLatents {
    /// Whether the run starts from the noised photo rather than pure noise (diffusers'
    /// `is_strength_max` is false, or image-to-image).
    pub fn starts_from_photo(&self) -> bool {
        self.mask.is_none() || self.strength != 1.0
    }
}

impl StableDiffusion {
    /// Checks a photo input before any compute: [`PhotoInput::check`], then the UNet kind (an
    /// inpainting UNet's 9 channels need a mask).
    pub fn check_photo(&self, input: &PhotoInput, steps: usize) -> Result<()> {
        input.check(steps)?;
        let (input_channels, latent) = self.unet_channels();
        if input_channels != latent && input_channels != 2 * latent + 1 {
            return Err(Error::InvalidRequest(format!(
                "the UNet takes {input_channels} input channels: neither a plain ({latent}) nor an inpainting ({}) UNet",
                2 * latent + 1
            )));
        }
        if input_channels != latent && input.mask.is_none() {
            return Err(Error::InvalidFields(vec![FieldError::new(
                "mask",
                format!("is needed: this is an inpainting UNet ({input_channels} input channels)"),
            )]));
        }
        Ok(())
    }

    /// The UNet's input channels and the latent channels (its output's).
    pub fn unet_channels(&self) -> (usize, usize) {
        (
            self.unet.conv_in.weight.dims()[1],
            self.unet.conv_out.weight.dims()[0],
        )
    }

    /// Encodes the photo (and the masked photo) at `width` × `height`. `draw(what, shape)`
    /// gives the standard-normal noise of each VAE sample, asked in diffusers' order and only
    /// where diffusers draws it.
    pub fn photo_latents(
        &self,
        input: &PhotoInput,
        width: usize,
        height: usize,
        draw: &mut dyn FnMut(PhotoDraw, [usize; 4]) -> Tensor<4>,
    ) -> Result<PhotoLatents> {
        let device = &self.device;
        let (input_channels, latent) = self.unet_channels();
        let [_, _, lh, lw] = self.latent_shape(width, height)?;
        let pixels = Tensor::<4>::from_data(
            TensorData::new(
                vae_processor::image(&input.image, width, height),
                [1, 3, height, width],
            ),
            device,
        );
        let encode = |pixels: Tensor<4>, noise: Tensor<4>| {
            self.vae.encode(pixels).sample(noise) * self.vae.scaling_factor
        };
        let shape = [1, latent, lh, lw];
        let Some(mask_image) = &input.mask else {
            let image = encode(pixels, draw(PhotoDraw::Image, shape));
            return Ok(PhotoLatents {
                image: Some(image),
                mask: None,
                masked_image: None,
                strength: input.strength,
            });
        };
        let mask = vae_processor::mask(mask_image, width, height);
        // Masked photo: the repainted part black (`image * (mask < 0.5)`).
        let keep: Vec<f32> = mask
            .iter()
            .map(|&m| if m < 0.5 { 1.0 } else { 0.0 })
            .collect();
        let keep = Tensor::<4>::from_data(TensorData::new(keep, [1, 1, height, width]), device);
        let masked = pixels.clone() * keep.expand([1, 3, height, width]);
        let needs_image = input_channels == latent || input.strength != 1.0;
        let image = needs_image.then(|| encode(pixels, draw(PhotoDraw::Image, shape)));
        // (diffusers encodes it for a 4-channel UNet too, and drops it.)
        let masked_image =
            (input_channels != latent).then(|| encode(masked, draw(PhotoDraw::MaskedImage, shape)));
        // torch's nearest interpolation to the latent size: source pixel floor(dst · factor).
        let (fy, fx) = (height / lh, width / lw);
        let small: Vec<f32> = (0..lh * lw)
            .map(|i| mask[(i / lw) * fy * width + (i % lw) * fx])
            .collect();
        Ok(PhotoLatents {
            image,
            mask: Some(Tensor::from_data(
                TensorData::new(small, [1, 1, lh, lw]),
                device,
            )),
            masked_image,
            strength: input.strength,
        })
    }
}
