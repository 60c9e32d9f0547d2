//! The classifier-free-guided denoising loop over a batch of images: `n` images run as one
//! UNet call of `2n` rows per step (`n` unconditional, then `n` conditional), each image with
//! its own noise stream, so an image comes out as it would alone (on a GPU the batch keeps the
//! device busy; on a CPU it gains little).

use burn::tensor::Tensor;

use super::txt2img::{DenoiseLoop, StableDiffusion, StepObserver};
use crate::rng::NoiseRng;
use crate::scheduler::Scheduler;
use crate::{Error, Result};

impl StableDiffusion {
    /// Denoises `init_latents` (`[n, C, h, w]`, standard normal; scaled here by the
    /// scheduler's `init_noise_sigma`) with `context_at(i)` (`[uncond; cond]`, `[2, L, D]`,
    /// shared by the batch) at step `i`; `rngs[k]` draws image `k`'s ancestral noise.
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
    ) -> Result<Tensor<4>> {
        let [n, c, h, w] = init_latents.dims();
        self.check_latents(&[1, c, h, w])?;
        if n != rngs.len() || n == 0 {
            return Err(Error::InvalidRequest(format!(
                "{n} starting latents for {} noise streams",
                rngs.len()
            )));
        }
        let mut scheduler = Scheduler::new(spec.scheduler, &self.scheduler_config, spec.steps)?;
        let mut latents = init_latents * scheduler.init_noise_sigma();
        let timesteps = scheduler.timesteps().to_vec();
        let total = timesteps.len();
        for (i, &t) in timesteps.iter().enumerate() {
            let input = scheduler
                .scale_model_input(Tensor::cat(vec![latents.clone(), latents.clone()], 0), i);
            let t = Tensor::<1>::from_floats(vec![t as f32; 2 * n].as_slice(), &self.device);
            let pred = self.unet.forward(input, t, batch_context(context_at(i), n));
            let uncond = pred.clone().slice([0..n, 0..c, 0..h, 0..w]);
            let cond = pred.slice([n..2 * n, 0..c, 0..h, 0..w]);
            let guided = uncond.clone() + (cond - uncond) * spec.guidance_scale;
            if observer.wants_x0(i + 1, total) {
                let x0 = scheduler.predicted_x0(guided.clone(), i, latents.clone());
                observer.x0(i + 1, total, x0)?;
            }
            let noise = spec.scheduler.needs_noise().then(|| {
                let per_image = rngs
                    .iter_mut()
                    .map(|rng| rng.tensor([1, c, h, w], &self.device))
                    .collect();
                Tensor::cat(per_image, 0)
            });
            latents = scheduler.step(guided, i, latents, noise);
            if !observer.after_step(i + 1, total) {
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
