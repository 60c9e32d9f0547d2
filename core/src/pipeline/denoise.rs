//! The classifier-free-guided denoising loop over a batch of images: `n` images run as one
//! UNet call of `2n` rows per step (`n` unconditional, then `n` conditional), each image with
//! its own noise stream, so an image comes out as it would alone (on a GPU the batch keeps the
//! device busy; on a CPU it gains little). With a photo ([`PhotoLatents`]) the same loop
//! inpaints or transforms it, as diffusers 0.23's inpainting and image-to-image pipelines.

use burn::tensor::Tensor;

use super::photo::PhotoLatents;
use super::txt2img::{DenoiseLoop, StableDiffusion, StepObserver};
use crate::rng::NoiseRng;
use crate::scheduler::Scheduler;
use crate::{Error, Result};

impl StableDiffusion {
    /// Denoises `init_latents` (`[n, C, h, w]`, standard normal; scaled here by the
    /// scheduler's `init_noise_sigma`) with `context_at(k)` (`[uncond; cond]`, `[2, L, D]`,
    /// shared by the batch) at step `k` of the run; `rngs[k]` draws image `k`'s ancestral
    /// noise. With `photo`, only the last `int(steps · strength)` steps run, starting from the
    /// photo noised by `init_latents` to that level (below strength 1, or image-to-image);
    /// a 9-channel UNet also sees the mask and the masked photo, and a 4-channel UNet's
    /// latents outside the mask are reset to the photo's, noised to the next level, after
    /// each step.
    ///
    /// # Shapes
    /// - `init_latents`: `[n, C, h, w]` with `n == rngs.len()` → `[n, C, h, w]`
    pub fn denoise_batch(
        &self,
        spec: &DenoiseLoop,
        context_at: &dyn Fn(usize) -> Tensor<3>,
        init_latents: Tensor<4>,
        rngs: &mut [NoiseRng],
        observer: &mut dyn StepObserver,
        photo: Option<&PhotoLatents>,
    ) -> Result<Tensor<4>> {
        let [n, c, h, w] = init_latents.dims();
        self.check_latents(&[1, c, h, w])?;
        if n != rngs.len() || n == 0 {
            return Err(Error::InvalidRequest(format!(
                "{n} starting latents for {} noise streams",
                rngs.len()
            )));
        }
        let (input_channels, _) = self.unet_channels();
        let extra = match photo {
            Some(PhotoLatents {
                mask: Some(mask),
                masked_image: Some(masked),
                ..
            }) if input_channels == 2 * c + 1 => Some(Tensor::cat(
                vec![
                    mask.clone().expand([2 * n, 1, h, w]),
                    masked.clone().expand([2 * n, c, h, w]),
                ],
                1,
            )),
            _ if input_channels == c => None,
            _ => {
                return Err(Error::InvalidRequest(format!(
                    "the UNet takes {input_channels} input channels: an inpainting UNet needs a mask"
                )));
            }
        };
        let mut scheduler = Scheduler::new(spec.scheduler, &self.scheduler_config, spec.steps)?;
        let timesteps = scheduler.timesteps().to_vec();
        let first = match photo {
            Some(p) => scheduler
                .start_step(p.strength)
                .ok_or_else(|| Error::Input {
                    name: "strength".into(),
                    reason: format!("{} of {} steps is no step at all", p.strength, spec.steps),
                })?,
            None => 0,
        };
        let image = |p: &PhotoLatents| {
            p.image
                .clone()
                .map(|x| x.expand([n, c, h, w]))
                .ok_or_else(|| Error::InvalidRequest("the photo's latents are missing".into()))
        };
        let start_noise = init_latents.clone();
        let mut latents = match photo {
            Some(p) if p.starts_from_photo() => {
                scheduler.add_noise(image(p)?, start_noise.clone(), first)
            }
            _ => init_latents * scheduler.init_noise_sigma(),
        };
        // The 4-channel blend: the photo outside the mask, the run inside.
        let blend = match photo {
            Some(p) if extra.is_none() => p
                .mask
                .clone()
                .map(|m| Ok::<_, Error>((m.expand([n, c, h, w]), image(p)?)))
                .transpose()?,
            _ => None,
        };
        let total = timesteps.len() - first;
        for (k, &t) in timesteps[first..].iter().enumerate() {
            let i = first + k;
            let mut input = scheduler
                .scale_model_input(Tensor::cat(vec![latents.clone(), latents.clone()], 0), i);
            if let Some(extra) = &extra {
                input = Tensor::cat(vec![input, extra.clone()], 1);
            }
            let t = Tensor::<1>::from_floats(vec![t as f32; 2 * n].as_slice(), &self.device);
            let pred = self.unet.forward(input, t, batch_context(context_at(k), n));
            let uncond = pred.clone().slice([0..n, 0..c, 0..h, 0..w]);
            let cond = pred.slice([n..2 * n, 0..c, 0..h, 0..w]);
            let guided = uncond.clone() + (cond - uncond) * spec.guidance_scale;
            if observer.wants_x0(k + 1, total) {
                let x0 = scheduler.predicted_x0(guided.clone(), i, latents.clone());
                observer.x0(k + 1, total, x0)?;
            }
            let noise = spec.scheduler.needs_noise().then(|| {
                let per_image = rngs
                    .iter_mut()
                    .map(|rng| rng.tensor([1, c, h, w], &self.device))
                    .collect();
                Tensor::cat(per_image, 0)
            });
            latents = scheduler.step(guided, i, latents, noise);
            if let Some((mask, image)) = &blend {
                let kept = if i + 1 < timesteps.len() {
                    scheduler.add_noise(image.clone(), start_noise.clone(), i + 1)
                } else {
                    image.clone()
                };
                latents = kept * (mask.clone().neg() + 1.0) + mask.clone() * latents;
            }
            if !observer.after_step(k + 1, total) {
                return Err(Error::Canceled);
            }
        }
        Ok(latents)
    }
}

/// `[uncond; cond]` (`[2, L, D]`) for a batch of `n`: `n` unconditional rows, then `n`
/// conditional ones.
fn batch_context(context: Tensor<3>, n: usize) -> Tensor<3> {
    if n == 1 {
        return context;
    }
    let [_, l, d] = context.dims();
    let uncond = context.clone().slice([0..1, 0..l, 0..d]).repeat_dim(0, n);
    let cond = context.slice([1..2, 0..l, 0..d]).repeat_dim(0, n);
    Tensor::cat(vec![uncond, cond], 0)
}
