//! Networks run straight from their torch state dicts (facenet-pytorch's InceptionResnetV1,
//! pytorch-fid's Inception-v3): parameters by state-dict name on the device, and the unit these
//! TensorFlow-born networks are built of (`BasicConv2d`: convolution without bias, eval-mode
//! BatchNorm with eps 1e-3, ReLU). Widths come from the checkpoint.

use std::collections::HashMap;

use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::torch_file;
use crate::{Error, Result};

/// The BatchNorm epsilon of TensorFlow's Inception ports.
pub const BN_EPS: f64 = 1e-3;

pub struct TorchNet {
    params: HashMap<String, (Vec<usize>, Tensor<1>)>,
    path: String,
    device: Device,
}

impl TorchNet {
    /// Reads a torch state dict (`path` names it in errors).
    pub fn load(bytes: &[u8], path: &str, device: &Device) -> Result<Self> {
        let tensors = torch_file::read(bytes).map_err(|reason| Error::WeightMismatch {
            path: path.to_string(),
            reason,
        })?;
        let params = tensors
            .into_iter()
            .map(|(name, t)| {
                let n = t.data.len();
                let values = Tensor::<1>::from_data(TensorData::new(t.data, [n]), device);
                (name, (t.shape, values))
            })
            .collect();
        Ok(Self {
            params,
            path: path.to_string(),
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// An error naming the checkpoint.
    pub fn mismatch(&self, reason: String) -> Error {
        Error::WeightMismatch {
            path: self.path.clone(),
            reason,
        }
    }

    /// The parameter `name` in its stored shape.
    pub fn get<const D: usize>(&self, name: &str) -> Result<Tensor<D>> {
        let (shape, t) = self
            .params
            .get(name)
            .ok_or_else(|| self.mismatch(format!("missing {name}")))?;
        let dims: [usize; D] = shape
            .clone()
            .try_into()
            .map_err(|_| self.mismatch(format!("{name} has shape {shape:?}")))?;
        Ok(t.clone().reshape(dims))
    }

    /// Eval-mode BatchNorm `name` over axis 1 of `x`.
    pub fn bn<const D: usize>(&self, x: Tensor<D>, name: &str) -> Result<Tensor<D>> {
        let mut shape = [1usize; D];
        shape[1] = x.dims()[1];
        let at = |p: &str| -> Result<Tensor<D>> {
            Ok(self.get::<1>(&format!("{name}.{p}"))?.reshape(shape))
        };
        let scale = at("weight")? / (at("running_var")? + BN_EPS).sqrt();
        Ok((x - at("running_mean")?) * scale + at("bias")?)
    }

    /// `BasicConv2d` `name`: `{name}.conv` (no bias; kernel from its weight), `{name}.bn`, ReLU.
    pub fn unit(
        &self,
        x: Tensor<4>,
        name: &str,
        stride: usize,
        pad: [usize; 2],
    ) -> Result<Tensor<4>> {
        let w = self.get::<4>(&format!("{name}.conv.weight"))?;
        let x = conv2d(
            x,
            w,
            None,
            ConvOptions::new([stride, stride], pad, [1, 1], 1),
        );
        Ok(relu(self.bn(x, &format!("{name}.bn"))?))
    }
}
