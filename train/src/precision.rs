//! The official precision recipe (`train.py:136-148` under `accelerate launch
//! --mixed_precision=bf16`, `shared/spec/train-eval.md` §A): the frozen networks and ProjPlus are
//! cast to bf16, ProjPlus *before* its optimizer is built, so its AdamW runs in pure bf16; the
//! FacialEncoder and the attention processors stay f32. burn has no autocast and mixed dtypes
//! do not meet in one op, so here every tensor stays f32 and holds bf16 *values* where the
//! official holds bf16 tensors: ProjPlus and the frozen weights, the frozen encoders' outputs and
//! the noise, and ProjPlus' gradients and moments (see [`Bf16AdamW`]). The activations in
//! between are f32 (the official computes its matmuls in bf16 under autocast): the parity test
//! states how far that puts us from the official run.

use burn::module::{Module, ModuleMapper, Param};
use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor};

use crate::network::Network;

/// Which precision recipe a run follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// The official recipe (the default): ProjPlus and the frozen networks in bf16.
    Bf16,
    /// Everything f32, ProjPlus with f32 master weights and moments: every step of its AdamW
    /// lands (in bf16 a step under half an ulp of the weight is lost).
    F32,
}

impl Precision {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "bf16" => Some(Self::Bf16),
            "f32" => Some(Self::F32),
            _ => None,
        }
    }
}

/// Each value rounded to the nearest bf16 (ties to even), kept as f32.
pub fn round<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(DType::BF16).cast(DType::F32)
}

/// A Python scalar as torch's bf16 kernels take it (`Scalar::to<BFloat16>`, through f32).
fn scalar(v: f64) -> f32 {
    half::bf16::from_f32(v as f32).to_f32()
}

/// Rounds every float parameter whose path `pick` chooses.
struct RoundTo<F: Fn(&str) -> bool> {
    path: Vec<String>,
    pick: F,
}

impl<F: Fn(&str) -> bool> ModuleMapper for RoundTo<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !(self.pick)(&self.path.join(".")) {
            return param;
        }
        // Through the host: on an autodiff device even a detached cast makes a graph node,
        // which cannot become a parameter again.
        let (id, value, _) = param.consume();
        let grad = value.is_require_grad();
        let device = value.device();
        let data = value.into_data().convert::<half::bf16>().convert::<f32>();
        let value = Tensor::<D>::from_data(data, &device);
        Param::initialized(id, if grad { value.require_grad() } else { value })
    }
}

/// Rounds every float parameter of `module` to bf16 values (a frozen network's bf16 copy).
pub fn round_module<M: Module>(module: M) -> M {
    module.map(&mut RoundTo {
        path: Vec::new(),
        pick: |_: &str| true,
    })
}

/// ProjPlus and the UNet's own (frozen) weights to bf16 values; the FacialEncoder and the
/// processors as they are.
pub fn round_network(net: Network) -> Network {
    net.map(&mut RoundTo {
        path: Vec::new(),
        pick: |path: &str| {
            path.starts_with("image_proj.")
                || (path.starts_with("unet.") && !path.contains(".processor."))
        },
    })
}

/// torch 2.0's `_single_tensor_adamw` (`torch/optim/adamw.py`) on a bf16 parameter, op by op:
/// each in-place op computes in f32 and rounds its result to bf16, and the Python scalars
/// that `mul_`, `add_(alpha=)`, the division by √(1 − β2ᵗ) and `add_(eps)` take are rounded to
/// bf16 first (addcmul's and addcdiv's `value` are not). What the official run therefore lives
/// with: β2 rounds to 1 (the second moment never decays, while its bias correction assumes it
/// does), 1 − lr·wd rounds to 1 (no weight decay), β1 to 0.8984 and 1 − β1 to 0.1001, and a
/// step under half an ulp of the weight is lost (at lr 1e-4, weights of magnitude ≥ 2⁻⁵ stop
/// moving once the first steps are past). Equal to torch on CPU bit for bit in the parameters
/// (tests/scripts/gen_train_step.py's `adamw_bf16` case).
#[derive(Clone, Debug)]
pub struct Bf16AdamW {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub weight_decay: f64,
}

impl Optimizer for Bf16AdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        // A bf16 parameter's gradient is bf16.
        let grad = round(grad);
        let (m, v, time) = match state {
            Some(s) => (s.momentum.moment_1, s.momentum.moment_2, s.momentum.time),
            None => (grad.zeros_like(), grad.zeros_like(), 0),
        };
        let time = time + 1;
        let tensor = round(tensor.mul_scalar(scalar(1.0 - lr * self.weight_decay)));
        // exp_avg.mul_(β1).add_(grad, alpha=1 − β1)
        let m = round(m.mul_scalar(scalar(self.beta_1)));
        let m = round(m + grad.clone().mul_scalar(scalar(1.0 - self.beta_1)));
        // exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 − β2)
        let v = round(v.mul_scalar(scalar(self.beta_2)));
        let v = round(v + grad.clone().mul_scalar((1.0 - self.beta_2) as f32) * grad);
        let bias_1 = 1.0 - self.beta_1.powi(time as i32);
        let bias_2 = 1.0 - self.beta_2.powi(time as i32);
        let step_size = lr / bias_1;
        // (exp_avg_sq.sqrt() / √bias_2).add_(eps)
        let denom = round(v.clone().sqrt());
        let denom = round(denom.div_scalar(scalar(bias_2.sqrt())));
        let denom = round(denom.add_scalar(scalar(self.epsilon)));
        // param.addcdiv_(exp_avg, denom, value=−step_size)
        let tensor = round(tensor + m.clone().mul_scalar(-step_size as f32).div(denom));
        let state = AdamWState {
            momentum: AdaptiveMomentumState {
                time,
                moment_1: m,
                moment_2: v,
                max_moment_2: None,
            },
        };
        (tensor, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}
