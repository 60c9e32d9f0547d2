//! `scheduler/scheduler_config.json`, read the way diffusers 0.23 `from_config` reads it: keys
//! present in the file win, absent keys take the chosen scheduler's own defaults.

use serde::Deserialize;

use crate::{Error, Result};

/// How the training noise schedule's betas are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    Linear,
    ScaledLinear,
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredcosCapV2,
}

/// How inference timesteps are spread over the training range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    Linspace,
    Leading,
    Trailing,
}

/// What the UNet predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    Epsilon,
    VPrediction,
    Sample,
}

/// The fields of a diffusers scheduler config that our schedulers read; `None` means "absent
/// from the file", resolved per scheduler by [`SchedulerConfig::resolve`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    pub num_train_timesteps: Option<usize>,
    pub beta_start: Option<f64>,
    pub beta_end: Option<f64>,
    pub beta_schedule: Option<BetaSchedule>,
    pub trained_betas: Option<Vec<f64>>,
    pub prediction_type: Option<PredictionType>,
    pub timestep_spacing: Option<TimestepSpacing>,
    pub steps_offset: Option<usize>,
    pub set_alpha_to_one: Option<bool>,
    pub clip_sample: Option<bool>,
    pub clip_sample_range: Option<f64>,
    pub thresholding: Option<bool>,
    pub use_karras_sigmas: Option<bool>,
    pub interpolation_type: Option<String>,
    pub algorithm_type: Option<String>,
    pub solver_order: Option<usize>,
    pub solver_type: Option<String>,
    pub lower_order_final: Option<bool>,
    pub euler_at_final: Option<bool>,
    pub rescale_betas_zero_snr: Option<bool>,
}

/// A config with every value decided for one scheduler class.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    pub trained_betas: Option<Vec<f64>>,
    pub prediction_type: PredictionType,
    pub timestep_spacing: TimestepSpacing,
    pub steps_offset: usize,
    pub set_alpha_to_one: bool,
    pub clip_sample: bool,
    pub clip_sample_range: f64,
    pub use_karras_sigmas: bool,
    pub lower_order_final: bool,
    pub euler_at_final: bool,
}

impl SchedulerConfig {
    /// Parses `scheduler_config.json` (any scheduler class).
    pub fn from_json(path: &str, text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Config {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Settings this port does not implement are refused rather than ignored.
    pub(crate) fn check_supported(&self, path: &str) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::Config {
                path: path.to_string(),
                reason: reason.to_string(),
            })
        };
        if self.thresholding == Some(true) {
            return bad("dynamic thresholding is not supported");
        }
        if self.rescale_betas_zero_snr == Some(true) {
            return bad("rescale_betas_zero_snr is not supported");
        }
        if self
            .interpolation_type
            .as_deref()
            .is_some_and(|t| t != "linear")
        {
            return bad("only interpolation_type \"linear\" is supported");
        }
        if self
            .algorithm_type
            .as_deref()
            .is_some_and(|t| t != "dpmsolver++")
        {
            return bad("only algorithm_type \"dpmsolver++\" is supported");
        }
        if self.solver_type.as_deref().is_some_and(|t| t != "midpoint") {
            return bad("only solver_type \"midpoint\" is supported");
        }
        if self.solver_order.is_some_and(|o| o != 2) {
            return bad("only solver_order 2 is supported");
        }
        Ok(())
    }

    /// Fills absent values with the defaults of a diffusers class whose own defaults are
    /// `spacing` for `timestep_spacing` and `clip_sample` for `clip_sample`.
    pub(crate) fn resolve(&self, spacing: TimestepSpacing, clip_sample: bool) -> Resolved {
        Resolved {
            num_train_timesteps: self.num_train_timesteps.unwrap_or(1000),
            beta_start: self.beta_start.unwrap_or(0.0001),
            beta_end: self.beta_end.unwrap_or(0.02),
            beta_schedule: self.beta_schedule.unwrap_or(BetaSchedule::Linear),
            trained_betas: self.trained_betas.clone(),
            prediction_type: self.prediction_type.unwrap_or(PredictionType::Epsilon),
            timestep_spacing: self.timestep_spacing.unwrap_or(spacing),
            steps_offset: self.steps_offset.unwrap_or(0),
            set_alpha_to_one: self.set_alpha_to_one.unwrap_or(true),
            clip_sample: self.clip_sample.unwrap_or(clip_sample),
            clip_sample_range: self.clip_sample_range.unwrap_or(1.0),
            use_karras_sigmas: self.use_karras_sigmas.unwrap_or(false),
            lower_order_final: self.lower_order_final.unwrap_or(true),
            euler_at_final: self.euler_at_final.unwrap_or(false),
        }
    }
}
