//! The classifier-free-guided denoising loop over a batch of images: `n` images run as one
//! UNet call of `2n` rows per step (`n` unconditional, then `n` conditional), each image with
//! its own noise stream, so an image comes out as it would alone (on a GPU the batch keeps the
//! device busy; on a CPU it gains little). With a photo ([`PhotoLatents`]) the same loop
//! inpaints or transforms it, as diffusers 0.23's inpainting and image-to-image pipelines.

use burn::tensor::Tensor;

use super::photo::{Control, PhotoLatents};
use super::txt2img::{DenoiseLoop, StableDiffusion, StepObserver};
use crate::rng::NoiseRng;
use crate::scheduler::Scheduler;
use crate::unet::ControlResiduals;
use crate::{Error, Result};

/// What every image of a run is denoised under.
#[derive(Clone, Copy)]
pub struct Conditions<'a> {
    /// `[uncond; cond]` (`[2, L, D]`, shared by the batch) at step `k` of the run.
    pub context_at: &'a dyn Fn(usize) -> Tensor<3>,
    /// The photo the run starts from.
    pub photo: Option<&'a PhotoLatents>,
    /// ControlNets, their residuals summed (diffusers' `MultiControlNetModel`).
    pub controls: &'a [Control<'a>],
}

impl<'a> Conditions<'a> {
    /// Text (and identity) conditioning only.
    pub fn text(context_at: &'a dyn Fn(usize) -> Tensor<3>) -> Self {
        Self {
            context_at,
            photo: None,
            controls: &[],
        }
    }
}

impl StableDiffusion {
    /// Denoises `init_latents` (`[n, C, h, w]`, standard normal; scaled here by the
    /// scheduler's `init_noise_sigma`) under `conditions`; `rngs[k]` draws image `k`'s
    /// ancestral noise. With a photo, only the last `int(steps · strength)` steps run, starting
    /// from the photo noised by `init_latents` to that level (below strength 1, or
    /// image-to-image); a 9-channel UNet also sees the mask and the masked photo, and a
    /// 4-channel UNet's latents outside the mask are reset to the photo's, noised to the next
    /// level, after each step. ControlNets see the conditional half's context and the
    /// unduplicated latents, and their residuals go to both halves (as the official
    /// ControlNet-inpainting pipeline), within their guidance window.
    ///
    /// # Shapes
    /// - `init_latents`: `[n, C, h, w]` with `n == rngs.len()` → `[n, C, h, w]`
    pub fn denoise_batch(
        &self,
        spec: &DenoiseLoop,
        conditions: &Conditions<'_>,
        init_latents: Tensor<4>,
        rngs: &mut [NoiseRng],
        observer: &mut dyn StepObserver,
    ) -> Result<Tensor<4>> {
        let Conditions {
            context_at,
            photo,
            controls,
        } = *conditions;
        let [n, c, h, w] = init_latents.dims();
        for control in controls {
            control.net.check_fits(&self.unet, "controlnet")?;
        }
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
            let t_rows = Tensor::<1>::from_floats(vec![t as f32; 2 * n].as_slice(), &self.device);
            let context = batch_context(context_at(k), n);
            let residuals = self.control_residuals(
                controls,
                (k, total),
                scheduler.scale_model_input(latents.clone(), i),
                t as f32,
                context.clone(),
            );
            let pred = self
                .unet
                .forward_controlled(input, t_rows, context, residuals.as_ref());
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

impl StableDiffusion {
    /// The summed residuals of the ControlNets active at step `k` of `total`, from the scaled
    /// latents `[n, C, h, w]` and the conditional half of the batched context `[2n, L, D]`.
    fn control_residuals(
        &self,
        controls: &[Control<'_>],
        (k, total): (usize, usize),
        latents: Tensor<4>,
        t: f32,
        context: Tensor<3>,
    ) -> Option<ControlResiduals> {
        let [n, _, _, _] = latents.dims();
        let [rows, l, d] = context.dims();
        let cond = context.slice([rows / 2..rows, 0..l, 0..d]);
        let mut sum: Option<ControlResiduals> = None;
        for control in controls.iter().filter(|c| c.active(k, total)) {
            let [_, ch, ih, iw] = control.image.dims();
            let r = control.net.forward(
                latents.clone(),
                Tensor::<1>::from_floats(vec![t; n].as_slice(), &self.device),
                cond.clone(),
                control.image.clone().expand([n, ch, ih, iw]),
                control.scale,
            );
            sum = Some(match sum {
                None => r,
                Some(s) => ControlResiduals {
                    down: s.down.into_iter().zip(r.down).map(|(a, b)| a + b).collect(),
                    mid: s.mid + r.mid,
                },
            });
        }
        sum
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
