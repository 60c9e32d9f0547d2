//! Text-to-image with Stable Diffusion 1.x, as diffusers 0.23 `StableDiffusionPipeline`:
//! prompt and negative prompt through CLIP, classifier-free guidance as one batch-2 UNet call
//! per step, the scheduler loop, VAE decode to [0, 1].

use burn::tensor::{DType, Device, Tensor};

use super::request::MAX_SIDE;
use crate::clip::{ClipTextConfig, ClipTextModel, ClipTokenizer};
use crate::rng::NoiseRng;
use crate::scheduler::{SchedulerConfig, SchedulerKind};
use crate::unet::{UNet2DConditionConfig, UNet2DConditionModel};
use crate::vae::{AutoencoderKL, AutoencoderKLConfig};
use crate::weights::WeightSource;
use crate::{Error, Result};

/// The models of an SD1.x diffusers folder, loaded once.
pub struct StableDiffusion {
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel,
    pub unet: UNet2DConditionModel,
    pub vae: AutoencoderKL,
    pub scheduler_config: SchedulerConfig,
    pub device: Device,
}

/// The configs a single-file checkpoint is read with.
#[derive(Debug, Clone)]
pub struct SingleFileConfigs {
    pub unet: UNet2DConditionConfig,
    pub vae: AutoencoderKLConfig,
    pub text_encoder: ClipTextConfig,
    pub scheduler: SchedulerConfig,
}

impl SingleFileConfigs {
    /// SD1.5's: the published UNet/VAE/CLIP-L configs and its scaled-linear PNDM schedule
    /// (leading spacing, steps_offset 1).
    pub fn sd15() -> Self {
        Self {
            unet: UNet2DConditionConfig::sd15(),
            vae: AutoencoderKLConfig::sd15(),
            text_encoder: ClipTextConfig::sd15(),
            scheduler: SchedulerConfig {
                num_train_timesteps: Some(1000),
                beta_start: Some(0.00085),
                beta_end: Some(0.012),
                beta_schedule: Some(crate::scheduler::BetaSchedule::ScaledLinear),
                set_alpha_to_one: Some(false),
                steps_offset: Some(1),
                clip_sample: Some(false),
                timestep_spacing: Some(crate::scheduler::TimestepSpacing::Leading),
                ..SchedulerConfig::default()
            },
        }
    }
}

/// One text-to-image request.
#[derive(Debug, Clone)]
pub struct Txt2ImgRequest {
    pub prompt: String,
    /// `None` is diffusers' default: the empty string.
    pub negative_prompt: Option<String>,
    pub steps: usize,
    pub guidance_scale: f64,
    pub scheduler: SchedulerKind,
}

/// Watches a denoising loop (progress, previews, cancellation).
pub trait StepObserver {
    /// Called after step `step` (1-based) of `total`; `false` stops the loop.
    fn after_step(&mut self, step: usize, total: usize) -> bool;
    /// Whether step `step` should hand its predicted x0 to [`Self::x0`].
    fn wants_x0(&mut self, _step: usize, _total: usize) -> bool {
        false
    }
    /// The scheduler's predicted clean latents at step `step` (model space, `[n, C, h, w]` for
    /// a batch of `n` images).
    fn x0(&mut self, _step: usize, _total: usize, _x0: Tensor<4>) -> Result<()> {
        Ok(())
    }
}

/// The sampler settings of a denoising loop.
#[derive(Clone, Copy, Debug)]
pub struct DenoiseLoop {
    pub scheduler: SchedulerKind,
    pub steps: usize,
    pub guidance_scale: f64,
}

impl StableDiffusion {
    /// Loads `tokenizer/`, `text_encoder/`, `unet/`, `vae/` and `scheduler/` of a diffusers
    /// folder; `variant` selects e.g. the `fp16` weight files. The networks keep and compute
    /// in `dtype` (f16 on GPUs, as the official pipeline; f32 on CPUs), whatever the files
    /// store; the loop around them stays in f32.
    pub fn load(
        source: &dyn WeightSource,
        variant: Option<&str>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let path = "scheduler/scheduler_config.json";
        let scheduler_config =
            SchedulerConfig::from_json(&source.display_path(path), &source.read_string(path)?)?;
        Ok(Self {
            tokenizer: ClipTokenizer::from_source(source, "tokenizer")?,
            text_encoder: ClipTextModel::load(source, "text_encoder", variant, dtype, device)?,
            unet: UNet2DConditionModel::load(source, "unet", variant, dtype, device)?,
            vae: AutoencoderKL::load(source, "vae", variant, dtype, device)?,
            scheduler_config,
            device: device.clone(),
        })
    }

    /// Loads a single-file SD1.x checkpoint (`model.diffusion_model.*`, `first_stage_model.*`,
    /// `cond_stage_model.transformer.*`); single files carry no configs or tokenizer, so both
    /// come from the caller ([`SingleFileConfigs::sd15`] for SD1.5 fine-tunes).
    pub fn load_single_file(
        source: &dyn WeightSource,
        path: &str,
        tokenizer: ClipTokenizer,
        configs: &SingleFileConfigs,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self {
            tokenizer,
            text_encoder: ClipTextModel::load_single_file(
                source,
                path,
                &configs.text_encoder,
                dtype,
                device,
            )?,
            unet: UNet2DConditionModel::load_single_file(
                source,
                path,
                &configs.unet,
                dtype,
                device,
            )?,
            vae: AutoencoderKL::load_single_file(source, path, &configs.vae, dtype, device)?,
            scheduler_config: configs.scheduler.clone(),
            device: device.clone(),
        })
    }

    /// The latent shape for an image of `width` × `height` pixels (multiples of the VAE's
    /// downsampling factor).
    pub fn latent_shape(&self, width: usize, height: usize) -> Result<[usize; 4]> {
        let f = 1usize << (self.vae.decoder.up_blocks.len() - 1);
        if width == 0 || height == 0 || !width.is_multiple_of(f) || !height.is_multiple_of(f) {
            return Err(Error::Input {
                name: "size".into(),
                reason: format!(
                    "width and height must be positive multiples of {f}, got {width}×{height}"
                ),
            });
        }
        // The UNet's output channels: an inpainting UNet takes more than its latents.
        let channels = self.unet.conv_out.weight.dims()[0];
        Ok([1, channels, height / f, width / f])
    }

    /// Initial latents must be one `[1, C, h, w]` sample with the UNet's channels and a size
    /// that decodes to at most [`MAX_SIDE`] pixels a side.
    pub fn check_latents(&self, dims: &[usize; 4]) -> Result<()> {
        let f = 1usize << (self.vae.decoder.up_blocks.len() - 1);
        let channels = self.unet.conv_out.weight.dims()[0];
        let [b, c, h, w] = *dims;
        let max = MAX_SIDE / f;
        if b != 1 || c != channels || !(1..=max).contains(&h) || !(1..=max).contains(&w) {
            return Err(Error::Input {
                name: "init_latents".into(),
                reason: format!(
                    "shape {dims:?}: expected [1, {channels}, h, w] with h and w from 1 to {max}"
                ),
            });
        }
        Ok(())
    }

    /// `[negative; positive]` text embeddings, `[2, 77, hidden]`.
    pub fn encode_prompt(&self, prompt: &str, negative: Option<&str>) -> Result<Tensor<3>> {
        let len = self.tokenizer.model_max_length();
        let ids = [
            self.tokenizer.encode_padded(negative.unwrap_or(""), len),
            self.tokenizer.encode_padded(prompt, len),
        ];
        let vocab = self
            .text_encoder
            .text_model
            .embeddings
            .token_embedding
            .weight
            .dims()[0];
        if ids.iter().flatten().any(|&i| i as usize >= vocab) {
            return Err(Error::InvalidRequest(format!(
                "a token id is outside the text encoder's vocabulary of {vocab}: tokenizer and text_encoder do not belong together"
            )));
        }
        Ok(self
            .text_encoder
            .forward_ids(&ids, &self.device)
            .last_hidden_state)
    }

    /// Runs the denoising loop from standard-normal `init_latents` (scaled here by the
    /// scheduler's `init_noise_sigma`, like diffusers' `latents=`) and decodes.
    /// `rng` supplies ancestral noise; `on_step(i, steps)` reports progress.
    ///
    /// # Shapes
    /// - `init_latents`: `[1, C, h, w]` → image `[1, 3, h·f, w·f]` in [0, 1]
    pub fn txt2img(
        &self,
        request: &Txt2ImgRequest,
        init_latents: Tensor<4>,
        rng: &mut NoiseRng,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        let context = self.encode_prompt(&request.prompt, request.negative_prompt.as_deref())?;
        let latents = self.denoise(request, context, init_latents, rng, on_step)?;
        Ok(self.decode(latents))
    }

    /// The scheduler loop with classifier-free guidance over `[negative; positive]` context.
    pub fn denoise(
        &self,
        request: &Txt2ImgRequest,
        context: Tensor<3>,
        init_latents: Tensor<4>,
        rng: &mut NoiseRng,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        let loop_spec = DenoiseLoop {
            scheduler: request.scheduler,
            steps: request.steps,
            guidance_scale: request.guidance_scale,
        };
        self.denoise_with(&loop_spec, &|_| context.clone(), init_latents, rng, on_step)
    }

    /// The classifier-free-guided denoising loop with a context per step: `context_at(i)` is
    /// `[uncond; cond]` (`[2, L, D]`) for step `i` (ConsistentID switches it at the merge step).
    /// `init_latents` is standard normal; it is scaled by the scheduler's `init_noise_sigma`.
    pub fn denoise_with(
        &self,
        spec: &DenoiseLoop,
        context_at: &dyn Fn(usize) -> Tensor<3>,
        init_latents: Tensor<4>,
        rng: &mut NoiseRng,
        on_step: &mut dyn FnMut(usize, usize),
    ) -> Result<Tensor<4>> {
        struct Steps<'a>(&'a mut dyn FnMut(usize, usize));
        impl StepObserver for Steps<'_> {
            fn after_step(&mut self, step: usize, total: usize) -> bool {
                (self.0)(step, total);
                true
            }
        }
        self.denoise_observed(spec, context_at, init_latents, rng, &mut Steps(on_step))
    }

    /// [`Self::denoise_with`] reporting to an observer: it may ask for the predicted x0 of a
    /// step (for previews) and stop the loop between steps ([`Error::Canceled`]).
    pub fn denoise_observed(
        &self,
        spec: &DenoiseLoop,
        context_at: &dyn Fn(usize) -> Tensor<3>,
        init_latents: Tensor<4>,
        rng: &mut NoiseRng,
        observer: &mut dyn StepObserver,
    ) -> Result<Tensor<4>> {
        self.check_latents(&init_latents.dims())?;
        self.denoise_batch(
            spec,
            &super::denoise::Conditions::text(context_at),
            init_latents,
            std::slice::from_mut(rng),
            observer,
        )
    }

    /// Decodes diffusion latents to an image in [0, 1] (`(x / 2 + 0.5).clamp(0, 1)`).
    pub fn decode(&self, latents: Tensor<4>) -> Tensor<4> {
        (self.vae.decode_latents(latents) / 2.0 + 0.5).clamp(0.0, 1.0)
    }
}
