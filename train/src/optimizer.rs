//! The official optimizer (`train.py:181-195`): AdamW, lr 1e-4, betas (0.9, 0.999), weight
//! decay 0.01 on every parameter (norms and biases included), eps 1e-8, set explicitly because
//! burn's defaults differ (eps 1e-5, weight decay 1e-4). No schedule, warm-up or clipping.

use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, ModuleOptimizer};

use crate::precision::{Bf16AdamW, Precision};

/// Learning rate of both official parameter groups.
pub const LEARNING_RATE: f64 = 1e-4;

/// The official AdamW settings.
pub fn adamw() -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(1e-2)
}

/// The run's optimizer: AdamW with the official settings, and under [`Precision::Bf16`] the
/// same settings in pure bf16 for ProjPlus (the official casts it before building AdamW).
/// Groups are chosen by path, so a checkpoint's state (keyed by the restored ids) finds its
/// optimizer again.
pub fn for_precision(precision: Precision) -> ModuleOptimizer {
    let optim = adamw().init();
    match precision {
        Precision::F32 => optim,
        Precision::Bf16 => optim.with_group(
            ParamGroup::from_predicate("image_proj."),
            Bf16AdamW {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-8,
                weight_decay: 1e-2,
            },
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::*;

    #[derive(Module, Debug)]
    struct One {
        theta: Param<Tensor<1>>,
    }

    /// One step from θ = [1000, 1] with gradients [1, 1e-8], against torch's AdamW formula:
    /// the decay (θ·lr·wd = 1e-3 on the first element) and ε (the second moves lr/2) show.
    #[test]
    fn one_step_follows_torch_adamw_with_the_official_settings() {
        let device = Device::flex().autodiff();
        let model = One {
            theta: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![1000f32, 1.0], [2]),
                &device,
            )),
        };
        let weights = Tensor::<1>::from_data(TensorData::new(vec![1f32, 1e-8], [2]), &device);
        let loss = (model.theta.val() * weights).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut optim = adamw().init();
        let model = optim.step(LEARNING_RATE, model, grads);
        let got = model
            .theta
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        // torch: θ(1 − lr·wd) − lr·m̂/(√v̂ + ε) with m̂ = g, √v̂ = |g|.
        let torch = |theta: f64, g: f64| theta * (1.0 - 1e-4 * 1e-2) - 1e-4 * g / (g.abs() + 1e-8);
        let want = [torch(1000.0, 1.0), torch(1.0, 1e-8)];
        assert!(
            (f64::from(got[0]) - want[0]).abs() < 1e-4,
            "{got:?} vs {want:?}"
        );
        assert!(
            (f64::from(got[1]) - want[1]).abs() < 1e-7,
            "{got:?} vs {want:?}"
        );
    }
}
