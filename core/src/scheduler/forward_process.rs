//! The forward (noising) process that training samples from: diffusers 0.23
//! `DDPMScheduler.add_noise`, `√ᾱ_t·x₀ + √(1−ᾱ_t)·ε`, with ᾱ from the model's scheduler config
//! and the coefficients rounded to f32 as torch computes them from its float32 table.

use burn::tensor::{Tensor, TensorData};

use super::config::{PredictionType, SchedulerConfig, TimestepSpacing};
use super::schedule::{alphas_cumprod, betas};
use crate::{Error, Result};

/// ᾱ for every training timestep.
#[derive(Debug, Clone)]
pub struct ForwardProcess {
    alphas_cumprod: Vec<f64>,
}

impl ForwardProcess {
    /// From the base model's `scheduler_config.json` (any class: only the betas matter).
    /// Training targets ε, so other prediction types are refused.
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        config.check_supported("scheduler/scheduler_config.json")?;
        let c = config.resolve(TimestepSpacing::Leading, true);
        if c.prediction_type != PredictionType::Epsilon {
            return Err(Error::Config {
                path: "scheduler/scheduler_config.json".into(),
                reason: "training predicts the noise (prediction_type \"epsilon\")".into(),
            });
        }
        Ok(Self {
            alphas_cumprod: alphas_cumprod(&betas(&c)),
        })
    }

    /// `num_train_timesteps` (1000): timesteps are drawn from `0..len`.
    pub fn num_train_timesteps(&self) -> usize {
        self.alphas_cumprod.len()
    }

    /// `(√ᾱ_t, √(1−ᾱ_t))` in f32, as torch computes them.
    pub fn coefficients(&self, t: usize) -> (f32, f32) {
        let a = self.alphas_cumprod[t] as f32;
        (a.sqrt(), (1.0 - a).sqrt())
    }

    /// # Shapes
    /// - `x0`, `noise`: `[b, c, h, w]`; `timesteps`: `b` values → `[b, c, h, w]`
    pub fn add_noise(
        &self,
        x0: Tensor<4>,
        noise: Tensor<4>,
        timesteps: &[usize],
    ) -> Result<Tensor<4>> {
        let b = x0.dims()[0];
        if timesteps.len() != b || noise.dims() != x0.dims() {
            return Err(Error::InvalidRequest(format!(
                "add_noise takes one timestep per sample and noise shaped like the latents; got \
                 {} timesteps, {:?} and {:?}",
                timesteps.len(),
                x0.dims(),
                noise.dims()
            )));
        }
        if let Some(&t) = timesteps.iter().find(|&&t| t >= self.num_train_timesteps()) {
            return Err(Error::InvalidRequest(format!(
                "timestep {t} is past the schedule's {}",
                self.num_train_timesteps()
            )));
        }
        let (signal, sigma): (Vec<f32>, Vec<f32>) =
            timesteps.iter().map(|&t| self.coefficients(t)).unzip();
        let (device, dtype) = (x0.device(), x0.dtype());
        let column = |v: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(v, [b, 1, 1, 1]), &device).cast(dtype)
        };
        Ok(x0 * column(signal) + noise * column(sigma))
    }
}
