//! Noise-schedule tables shared by the schedulers (diffusers 0.23
//! `schedulers/scheduling_*.py`): betas, cumulative alphas, sigmas, inference timesteps.
//!
//! diffusers computes the training tables in float32 torch ops and the inference tables in
//! float64 numpy: values are rounded to f32 where upstream holds f32, so tables agree to ~1 ulp.

use super::config::{BetaSchedule, Resolved, TimestepSpacing};

/// Rounds to the nearest f32, as a torch float32 tensor would hold the value.
pub(crate) fn f32r(x: f64) -> f64 {
    x as f32 as f64
}

/// `self.betas` (float32).
pub(crate) fn betas(c: &Resolved) -> Vec<f64> {
    let n = c.num_train_timesteps;
    if let Some(trained) = &c.trained_betas {
        return trained.iter().map(|&b| f32r(b)).collect();
    }
    let linspace = |a: f64, b: f64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                if n == 1 {
                    a
                } else {
                    a + (b - a) * i as f64 / (n - 1) as f64
                }
            })
            .map(f32r)
            .collect()
    };
    match c.beta_schedule {
        BetaSchedule::Linear => linspace(c.beta_start, c.beta_end),
        BetaSchedule::ScaledLinear => linspace(c.beta_start.sqrt(), c.beta_end.sqrt())
            .into_iter()
            .map(|b| f32r(b * b))
            .collect(),
        // `betas_for_alpha_bar` with the cosine schedule and max_beta 0.999.
        BetaSchedule::SquaredcosCapV2 => {
            let alpha_bar = |t: f64| {
                ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
                    .cos()
                    .powi(2)
            };
            (0..n)
                .map(|i| {
                    let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
                    f32r((1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999))
                })
                .collect()
        }
    }
}

/// `torch.cumprod(1 - betas)`: accumulated in double, stored as float32, as torch does on CPU.
pub(crate) fn alphas_cumprod(betas: &[f64]) -> Vec<f64> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|b| {
            acc *= f32r(1.0 - b);
            f32r(acc)
        })
        .collect()
}

/// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` in float32, ascending in t.
pub(crate) fn train_sigmas(alphas_cumprod: &[f64]) -> Vec<f64> {
    alphas_cumprod
        .iter()
        .map(|&a| {
            let (a, one) = (a as f32, 1.0f32);
            f64::from(((one - a) / a).sqrt())
        })
        .collect()
}

/// `np.interp(x, arange(len(fp)), fp)`.
pub(crate) fn interp(x: &[f64], fp: &[f64]) -> Vec<f64> {
    let last = fp.len() - 1;
    x.iter()
        .map(|&t| {
            if t <= 0.0 {
                fp[0]
            } else if t >= last as f64 {
                fp[last]
            } else {
                let i = t.floor() as usize;
                let w = t - i as f64;
                fp[i] + (fp[i + 1] - fp[i]) * w
            }
        })
        .collect()
}

/// Karras et al. (2022) sigmas between `sigma_min` and `sigma_max`, rho = 7.
pub(crate) fn karras(sigma_min: f64, sigma_max: f64, n: usize) -> Vec<f64> {
    let rho = 7.0;
    let (lo, hi) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    (0..n)
        .map(|i| {
            let ramp = if n == 1 {
                0.0
            } else {
                i as f64 / (n - 1) as f64
            };
            (hi + ramp * (lo - hi)).powf(rho)
        })
        .collect()
}

/// `_sigma_to_t`: the fractional training timestep whose log-sigma interpolates to `sigma`.
pub(crate) fn sigma_to_t(sigma: f64, log_sigmas: &[f64]) -> f64 {
    let log_sigma = sigma.max(1e-10).ln();
    // Index of the last log-sigma not above log_sigma, clipped so that a successor exists.
    let count = log_sigmas.iter().filter(|&&l| log_sigma - l >= 0.0).count();
    let low = count.saturating_sub(1).min(log_sigmas.len() - 2);
    let (lo, hi) = (log_sigmas[low], log_sigmas[low + 1]);
    let w = ((lo - log_sigma) / (lo - hi)).clamp(0.0, 1.0);
    (1.0 - w) * low as f64 + w * (low + 1) as f64
}

/// `np.arange(start, stop, step)` for a negative float step.
fn arange_down(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    (0..len).map(|i| start + i as f64 * step).collect()
}

/// Inference timesteps, descending. The sigma-based schedulers (Euler, Euler ancestral) keep
/// "linspace" values as float32 (`integer = false`); DDIM rounds them to integers. The
/// "leading" and "trailing" spacings give integers for both.
pub(crate) fn timesteps(c: &Resolved, steps: usize, integer: bool) -> Vec<f64> {
    let n = c.num_train_timesteps;
    match c.timestep_spacing {
        TimestepSpacing::Linspace => (0..steps)
            .rev()
            .map(|i| {
                let v = if steps == 1 {
                    0.0
                } else {
                    (n - 1) as f64 * i as f64 / (steps - 1) as f64
                };
                if integer {
                    v.round_ties_even()
                } else {
                    f32r(v)
                }
            })
            .collect(),
        TimestepSpacing::Leading => {
            let ratio = n / steps;
            (0..steps)
                .rev()
                .map(|i| (i * ratio + c.steps_offset) as f64)
                .collect()
        }
        TimestepSpacing::Trailing => arange_down(n as f64, 0.0, -(n as f64 / steps as f64))
            .into_iter()
            .map(|v| v.round_ties_even() - 1.0)
            .collect(),
    }
}
