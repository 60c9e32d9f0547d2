//! The network training optimises: the ID projection (`image_proj`), the FacialEncoder and the
//! UNet with ConsistentID's attention processors, as one burn module so that one optimizer
//! sees every trained parameter. The UNet's own weights are frozen; its activations still
//! carry gradients back to the processors and the conditioning.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Gradients, Tensor};
use consistentid_core::consistentid::{FacialEncoder, ProjPlusModel};
use consistentid_core::unet::UNet2DConditionModel;

use crate::names::release_name;

#[derive(Module, Debug)]
pub struct Network {
    pub image_proj: ProjPlusModel,
    pub facial_encoder: FacialEncoder,
    pub unet: UNet2DConditionModel,
}

/// What is trained besides ProjPlus and the FacialEncoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainAdapter {
    /// The attention processors (LoRA, `to_k_ip`/`to_v_ip`) too: today's official code.
    All,
    /// Only ProjPlus and the FacialEncoder: the April 2024 recipe behind the released weights.
    None,
}

/// Sets each float parameter's `require_grad` from its path.
struct RequireGrad<F: Fn(&str) -> bool> {
    path: Vec<String>,
    trained: F,
}

impl<F: Fn(&str) -> bool> ModuleMapper for RequireGrad<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let trained = (self.trained)(&self.path.join("."));
        param.set_require_grad(trained)
    }
}

/// A parameter (or its gradient) on the host in torch's layout: rank-2 weights `[out, in]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    fn torch_layout<const D: usize>(t: Tensor<D>) -> Self {
        Self::host(if D == 2 { t.swap_dims(0, 1) } else { t })
    }

    fn host<const D: usize>(t: Tensor<D>) -> Self {
        Self {
            shape: t.dims().to_vec(),
            data: t
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default(),
        }
    }
}

/// Every float parameter's path with its value (torch's layout), or its gradient when `grads`
/// is given (and the parameter has one), or with `trained_as_is` the trained parameters' values
/// in burn's layout.
struct Collect<'a> {
    path: Vec<String>,
    grads: Option<&'a Gradients>,
    trained_as_is: bool,
    out: Vec<(String, ParamId, HostTensor)>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if self.trained_as_is {
            if value.is_require_grad() {
                self.out
                    .push((self.path.join("."), param.id, HostTensor::host(value)));
            }
            return;
        }
        let t = match self.grads {
            None => Some(value),
            Some(grads) => value.grad(grads),
        };
        if let Some(t) = t {
            self.out
                .push((self.path.join("."), param.id, HostTensor::torch_layout(t)));
        }
    }
}

impl Network {
    /// Freezes the UNet's own weights (and, with [`TrainAdapter::None`], its processors too);
    /// ProjPlus and the FacialEncoder train.
    pub fn with_trained(self, adapter: TrainAdapter) -> Self {
        self.map(&mut RequireGrad {
            path: Vec::new(),
            trained: move |path: &str| {
                !path.starts_with("unet.")
                    || (adapter == TrainAdapter::All && path.contains(".processor."))
            },
        })
    }

    fn collect(&self, grads: Option<&Gradients>) -> Vec<(String, ParamId, HostTensor)> {
        let mut c = Collect {
            path: Vec::new(),
            grads,
            trained_as_is: false,
            out: Vec::new(),
        };
        self.visit(&mut c);
        c.out
    }

    /// Keeps the trained parameters, under their release keys.
    fn released(&self, all: Vec<(String, ParamId, HostTensor)>) -> Vec<(String, HostTensor)> {
        let attention = self.unet.attention_paths();
        all.into_iter()
            .filter_map(|(path, _, t)| Some((release_name(&path, &attention)?, t)))
            .collect()
    }

    /// The trained parameters as burn holds them (path, id, value in burn's layout): what a
    /// checkpoint keeps.
    pub fn trained_state(&self) -> Vec<(String, ParamId, HostTensor)> {
        let mut c = Collect {
            path: Vec::new(),
            grads: None,
            trained_as_is: true,
            out: Vec::new(),
        };
        self.visit(&mut c);
        c.out
    }

    /// Every float parameter: burn path, id, value (torch layout).
    pub fn parameters(&self) -> Vec<(String, ParamId, HostTensor)> {
        self.collect(None)
    }

    /// ProjPlus, the FacialEncoder and the processors under their release keys.
    pub fn release_parameters(&self) -> Vec<(String, HostTensor)> {
        self.released(self.collect(None))
    }

    /// The gradient of every released parameter that has one, under its release key.
    pub fn release_gradients(&self, grads: &Gradients) -> Vec<(String, HostTensor)> {
        self.released(self.collect(Some(grads)))
    }
}
