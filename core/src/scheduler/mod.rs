//! Diffusion schedulers equal to diffusers 0.23: Euler (the official ConsistentID choice),
//! Euler ancestral, DDIM and DPM-Solver++ 2M (with Karras sigmas for `dpmpp-2m-karras`).
//!
//! A [`Scheduler`] is built for a number of inference steps; the denoising loop asks it for
//! the UNet timestep of step `i`, scales the UNet input, and steps. Randomness (Euler
//! ancestral, DDIM with eta > 0) comes in as an explicit noise tensor, so runs are reproducible
//! across backends.

pub mod config;
mod forward_process;
mod schedule;

use burn::tensor::Tensor;

use config::Resolved;
pub use config::{BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing};
pub use forward_process::ForwardProcess;
use schedule::{alphas_cumprod, betas, f32r, interp, karras, sigma_to_t, train_sigmas};

use crate::{Error, Result};

/// The scheduler algorithms, by their CLI (and API) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SchedulerKind {
    /// `EulerDiscreteScheduler` (`euler`).
    #[serde(rename = "euler")]
    Euler,
    /// `EulerAncestralDiscreteScheduler` (`euler-a`).
    #[serde(rename = "euler-a")]
    EulerAncestral,
    /// `DDIMScheduler` with eta = 0 (`ddim`).
    #[serde(rename = "ddim")]
    Ddim,
    /// `DPMSolverMultistepScheduler`, dpmsolver++ order 2 with Karras sigmas (`dpmpp-2m-karras`).
    #[serde(rename = "dpmpp-2m-karras")]
    DpmSolverMultistepKarras,
}

impl SchedulerKind {
    /// Parses a CLI name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "euler" => Some(Self::Euler),
            "euler-a" => Some(Self::EulerAncestral),
            "ddim" => Some(Self::Ddim),
            "dpmpp-2m-karras" => Some(Self::DpmSolverMultistepKarras),
            _ => None,
        }
    }

    /// The CLI (and API) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Euler => "euler",
            Self::EulerAncestral => "euler-a",
            Self::Ddim => "ddim",
            Self::DpmSolverMultistepKarras => "dpmpp-2m-karras",
        }
    }

    /// Every CLI name.
    pub const NAMES: [&'static str; 4] = ["euler", "euler-a", "ddim", "dpmpp-2m-karras"];

    /// The A1111 sampler name written into PNG parameters.
    pub fn sampler_name(self) -> &'static str {
        match self {
            Self::Euler => "Euler",
            Self::EulerAncestral => "Euler a",
            Self::Ddim => "DDIM",
            Self::DpmSolverMultistepKarras => "DPM++ 2M Karras",
        }
    }

    /// Whether [`Scheduler::step`] needs a noise tensor.
    pub fn needs_noise(self) -> bool {
        self == Self::EulerAncestral
    }
}

/// A scheduler set up for a fixed number of inference steps.
#[derive(Debug)]
pub struct Scheduler {
    kind: SchedulerKind,
    config: Resolved,
    timesteps: Vec<f64>,
    /// Per-step sigmas (one more than steps) for the sigma-based schedulers.
    sigmas: Vec<f64>,
    alphas_cumprod: Vec<f64>,
    final_alpha_cumprod: f64,
    init_noise_sigma: f64,
    /// DPM-Solver: the converted model output of the previous step.
    previous_x0: Option<Tensor<4>>,
}

impl Scheduler {
    /// Builds `kind` from a scheduler config (any class's file) for `steps` inference steps.
    pub fn new(kind: SchedulerKind, config: &SchedulerConfig, steps: usize) -> Result<Self> {
        config.check_supported("scheduler/scheduler_config.json")?;
        if steps == 0 {
            return Err(Error::Config {
                path: "scheduler".into(),
                reason: "the number of steps must be at least 1".into(),
            });
        }
        // Each diffusers class has its own defaults for keys absent from the file.
        let c = match kind {
            SchedulerKind::Ddim => config.resolve(TimestepSpacing::Leading, true),
            _ => config.resolve(TimestepSpacing::Linspace, false),
        };
        if steps > c.num_train_timesteps {
            return Err(Error::Config {
                path: "scheduler".into(),
                reason: format!(
                    "{steps} steps exceed num_train_timesteps {}",
                    c.num_train_timesteps
                ),
            });
        }
        let ac = alphas_cumprod(&betas(&c));
        let train = train_sigmas(&ac);
        let log_sigmas: Vec<f64> = train.iter().map(|s| s.ln()).collect();
        let (timesteps, sigmas, init_noise_sigma) = match kind {
            SchedulerKind::Euler | SchedulerKind::EulerAncestral => {
                let mut timesteps = schedule::timesteps(&c, steps, false);
                let mut sigmas = interp(&timesteps, &train);
                if kind == SchedulerKind::Euler && c.use_karras_sigmas {
                    sigmas = karras(sigmas[sigmas.len() - 1], sigmas[0], steps);
                    timesteps = sigmas.iter().map(|&s| sigma_to_t(s, &log_sigmas)).collect();
                }
                sigmas.push(0.0);
                let sigmas: Vec<f64> = sigmas.into_iter().map(f32r).collect();
                let max = sigmas.iter().cloned().fold(0.0, f64::max);
                let init = match c.timestep_spacing {
                    TimestepSpacing::Linspace | TimestepSpacing::Trailing => max,
                    TimestepSpacing::Leading => f32r((max * max + 1.0).sqrt()),
                };
                (timesteps, sigmas, init)
            }
            SchedulerKind::Ddim => (schedule::timesteps(&c, steps, true), Vec::new(), 1.0),
            SchedulerKind::DpmSolverMultistepKarras => {
                // Karras spacing over the whole training range (sigmas flipped to descending).
                let mut sigmas = karras(train[0], train[train.len() - 1], steps);
                let timesteps = sigmas
                    .iter()
                    .map(|&s| sigma_to_t(s, &log_sigmas).round_ties_even())
                    .collect();
                sigmas.push(sigmas[sigmas.len() - 1]);
                (timesteps, sigmas.into_iter().map(f32r).collect(), 1.0)
            }
        };
        let final_alpha_cumprod = if c.set_alpha_to_one { 1.0 } else { ac[0] };
        Ok(Self {
            kind,
            config: c,
            timesteps,
            sigmas,
            alphas_cumprod: ac,
            final_alpha_cumprod,
            init_noise_sigma,
            previous_x0: None,
        })
    }

    /// The algorithm.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// The UNet timestep of each step (fractional for Euler with Karras sigmas).
    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    /// Per-step sigmas (`steps + 1` values) of the sigma-based schedulers; empty for DDIM.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// What standard-normal initial latents are multiplied by.
    pub fn init_noise_sigma(&self) -> f64 {
        self.init_noise_sigma
    }

    /// Scales the UNet input of step `i` (`x / sqrt(sigma² + 1)` for the Euler family).
    pub fn scale_model_input(&self, sample: Tensor<4>, i: usize) -> Tensor<4> {
        match self.kind {
            SchedulerKind::Euler | SchedulerKind::EulerAncestral => {
                let s = self.sigmas[i];
                sample / f32r((s * s + 1.0).sqrt())
            }
            SchedulerKind::Ddim | SchedulerKind::DpmSolverMultistepKarras => sample,
        }
    }

    /// One denoising step from step `i`'s sample to the next.
    ///
    /// `noise` (standard normal, the sample's shape) is required by Euler ancestral and
    /// ignored by the others.
    ///
    /// # Shapes
    /// - `model_output`, `sample`, `noise`: `[batch, channels, height, width]`
    pub fn step(
        &mut self,
        model_output: Tensor<4>,
        i: usize,
        sample: Tensor<4>,
        noise: Option<Tensor<4>>,
    ) -> Tensor<4> {
        match self.kind {
            SchedulerKind::Euler => self.euler(model_output, i, sample),
            SchedulerKind::EulerAncestral => {
                let noise = noise
                    .expect("Euler ancestral needs a noise tensor (SchedulerKind::needs_noise)");
                self.euler_ancestral(model_output, i, sample, noise)
            }
            SchedulerKind::Ddim => self.ddim(model_output, i, sample),
            SchedulerKind::DpmSolverMultistepKarras => self.dpm_solver(model_output, i, sample),
        }
    }

    /// The first step an image-to-image or inpainting run takes at `strength` (diffusers 0.23
    /// `get_timesteps`: the last `int(steps · strength)` steps run), as the step index the
    /// scheduler then uses (`_init_step_index`: where the start timestep occurs twice, its
    /// second place). `None` when no step would run.
    pub fn start_step(&self, strength: f64) -> Option<usize> {
        let n = self.timesteps.len();
        let run = ((n as f64 * strength) as usize).min(n);
        if run == 0 {
            return None;
        }
        let first = n - run;
        let t = self.timesteps[first];
        let places: Vec<usize> = (0..n).filter(|&i| self.timesteps[i] == t).collect();
        Some(if places.len() > 1 {
            places[1]
        } else {
            places[0]
        })
    }

    /// Noises clean latents to the noise level of step `i` (each class's `add_noise` in
    /// diffusers 0.23): `x + σᵢ·ε` for the Euler family, `√ᾱₜ·x + √(1 − ᾱₜ)·ε` for DDIM, and
    /// `αᵢ·x + σᵢαᵢ·ε` with `αᵢ = 1/√(σᵢ² + 1)` for DPM-Solver.
    ///
    /// # Shapes
    /// - `original`, `noise`: `[batch, channels, height, width]`
    pub fn add_noise(&self, original: Tensor<4>, noise: Tensor<4>, i: usize) -> Tensor<4> {
        match self.kind {
            SchedulerKind::Euler | SchedulerKind::EulerAncestral => {
                original + noise * self.sigmas[i]
            }
            SchedulerKind::Ddim => {
                let a = f32r(self.alphas_cumprod[self.timesteps[i] as usize]);
                original * f32r(a.sqrt()) + noise * f32r((1.0 - a).sqrt())
            }
            SchedulerKind::DpmSolverMultistepKarras => {
                let s = self.sigmas[i];
                let alpha = f32r(1.0 / (s * s + 1.0).sqrt());
                original * alpha + noise * f32r(s * alpha)
            }
        }
    }

    /// The scheduler's estimate of the clean latents x0 at step `i` (model-space latents),
    /// computed as its step would; used for live previews.
    ///
    /// # Shapes
    /// - `model_output`, `sample`: `[batch, channels, height, width]`
    pub fn predicted_x0(&self, model_output: Tensor<4>, i: usize, sample: Tensor<4>) -> Tensor<4> {
        match self.kind {
            SchedulerKind::Euler | SchedulerKind::EulerAncestral => {
                self.x0_from_sigma(model_output, sample, self.sigmas[i])
            }
            SchedulerKind::Ddim => {
                let a_t = self.alphas_cumprod[self.timesteps[i] as usize];
                let b_t = 1.0 - a_t;
                match self.config.prediction_type {
                    PredictionType::Epsilon => (sample - model_output * b_t.sqrt()) / a_t.sqrt(),
                    PredictionType::Sample => model_output,
                    PredictionType::VPrediction => sample * a_t.sqrt() - model_output * b_t.sqrt(),
                }
            }
            SchedulerKind::DpmSolverMultistepKarras => {
                let s = self.sigmas[i];
                let (alpha, sigma) = (1.0 / (s * s + 1.0).sqrt(), s / (s * s + 1.0).sqrt());
                match self.config.prediction_type {
                    PredictionType::Epsilon => (sample - model_output * sigma) / alpha,
                    PredictionType::Sample => model_output,
                    PredictionType::VPrediction => sample * alpha - model_output * sigma,
                }
            }
        }
    }

    /// The denoised estimate x0 of the sigma-parameterised schedulers.
    fn x0_from_sigma(&self, out: Tensor<4>, sample: Tensor<4>, sigma: f64) -> Tensor<4> {
        match self.config.prediction_type {
            PredictionType::Epsilon => sample - out * sigma,
            PredictionType::VPrediction => {
                out * (-sigma / (sigma * sigma + 1.0).sqrt()) + sample / (sigma * sigma + 1.0)
            }
            PredictionType::Sample => out,
        }
    }

    /// `EulerDiscreteScheduler.step` with `s_churn = 0`.
    fn euler(&self, out: Tensor<4>, i: usize, sample: Tensor<4>) -> Tensor<4> {
        let sigma = self.sigmas[i];
        let x0 = self.x0_from_sigma(out, sample.clone(), sigma);
        let derivative = (sample.clone() - x0) / sigma;
        sample + derivative * (self.sigmas[i + 1] - sigma)
    }

    /// `EulerAncestralDiscreteScheduler.step`.
    fn euler_ancestral(
        &self,
        out: Tensor<4>,
        i: usize,
        sample: Tensor<4>,
        noise: Tensor<4>,
    ) -> Tensor<4> {
        let (from, to) = (self.sigmas[i], self.sigmas[i + 1]);
        let x0 = self.x0_from_sigma(out, sample.clone(), from);
        let up = (to * to * (from * from - to * to) / (from * from)).sqrt();
        let down = (to * to - up * up).sqrt();
        let derivative = (sample.clone() - x0) / from;
        sample + derivative * (down - from) + noise * up
    }

    /// `DDIMScheduler.step` with eta = 0.
    fn ddim(&self, out: Tensor<4>, i: usize, sample: Tensor<4>) -> Tensor<4> {
        let c = &self.config;
        let t = self.timesteps[i] as usize;
        let prev = t as i64 - (c.num_train_timesteps / self.timesteps.len()) as i64;
        let a_t = self.alphas_cumprod[t];
        let a_prev = if prev >= 0 {
            self.alphas_cumprod[prev as usize]
        } else {
            self.final_alpha_cumprod
        };
        let b_t = 1.0 - a_t;
        let (mut x0, eps) = match c.prediction_type {
            PredictionType::Epsilon => ((sample - out.clone() * b_t.sqrt()) / a_t.sqrt(), out),
            PredictionType::Sample => {
                let eps = (sample - out.clone() * a_t.sqrt()) / b_t.sqrt();
                (out, eps)
            }
            PredictionType::VPrediction => (
                sample.clone() * a_t.sqrt() - out.clone() * b_t.sqrt(),
                out * a_t.sqrt() + sample * b_t.sqrt(),
            ),
        };
        if c.clip_sample {
            x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range);
        }
        x0 * a_prev.sqrt() + eps * (1.0 - a_prev).sqrt()
    }

    /// `DPMSolverMultistepScheduler.step`: dpmsolver++, midpoint, order 2.
    fn dpm_solver(&mut self, out: Tensor<4>, i: usize, sample: Tensor<4>) -> Tensor<4> {
        let n = self.timesteps.len();
        let c = &self.config;
        let lower_order_final = i == n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15));
        // alpha_t = 1/sqrt(sigma²+1), sigma_t = sigma * alpha_t, lambda = ln(alpha_t / sigma_t).
        let alpha_sigma = |s: f64| {
            let a = 1.0 / (s * s + 1.0).sqrt();
            (a, s * a)
        };
        let (alpha_s0, sigma_s0) = alpha_sigma(self.sigmas[i]);
        let x0 = match c.prediction_type {
            PredictionType::Epsilon => (sample.clone() - out * sigma_s0) / alpha_s0,
            PredictionType::Sample => out,
            PredictionType::VPrediction => sample.clone() * alpha_s0 - out * sigma_s0,
        };
        let (alpha_t, sigma_t) = alpha_sigma(self.sigmas[i + 1]);
        let lambda = |a: f64, s: f64| a.ln() - s.ln();
        let h = lambda(alpha_t, sigma_t) - lambda(alpha_s0, sigma_s0);
        let coef = alpha_t * ((-h).exp() - 1.0);
        let result = match (&self.previous_x0, lower_order_final) {
            (Some(m1), false) => {
                let (alpha_s1, sigma_s1) = alpha_sigma(self.sigmas[i - 1]);
                let r0 = (lambda(alpha_s0, sigma_s0) - lambda(alpha_s1, sigma_s1)) / h;
                let d1 = (x0.clone() - m1.clone()) * (1.0 / r0);
                sample * (sigma_t / sigma_s0) - x0.clone() * coef - d1 * (0.5 * coef)
            }
            _ => sample * (sigma_t / sigma_s0) - x0.clone() * coef,
        };
        self.previous_x0 = Some(x0);
        result
    }
}
