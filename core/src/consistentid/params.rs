//! Building burn layers (`nn::Linear`, `nn::LayerNorm`) by checkpoint name from a torch state
//! dict (ModuleList indices kept as they are), with the shapes checked on load. The layers are
//! ordinary `Param`s, so the modules built from them train like any burn module.

use std::collections::HashMap;

use burn::module::Param;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use crate::weights::torch_file::TorchTensor;
use crate::{Error, Result};

/// State-dict tensors under a prefix, consumed as the model is built.
pub struct StateDict<'a> {
    pub tensors: &'a mut HashMap<String, TorchTensor>,
    pub path: &'a str,
    pub device: &'a Device,
}

impl StateDict<'_> {
    pub fn mismatch(&self, reason: String) -> Error {
        Error::WeightMismatch {
            path: self.path.to_string(),
            reason,
        }
    }

    /// Removes `name`, checking its rank.
    pub fn take(&mut self, name: &str, rank: usize) -> Result<TorchTensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| self.mismatch(format!("`{name}` missing")))?;
        if t.shape.len() != rank {
            return Err(self.mismatch(format!("`{name}` has shape {:?}", t.shape)));
        }
        Ok(t)
    }

    pub fn upload<const D: usize>(&self, t: TorchTensor) -> Tensor<D> {
        let mut dims = [1; D];
        dims.copy_from_slice(&t.shape);
        Tensor::from_data(TensorData::new(t.data, dims), self.device)
    }

    /// `nn.Linear` (torch weight `[out, in]`, burn's `[in, out]`).
    pub fn linear(&mut self, prefix: &str, bias: bool) -> Result<Linear> {
        let w = self.take(&format!("{prefix}.weight"), 2)?;
        let out = w.shape[0];
        let bias = if bias {
            let b = self.take(&format!("{prefix}.bias"), 1)?;
            if b.shape[0] != out {
                return Err(self.mismatch(format!("`{prefix}.bias` does not match its weight")));
            }
            Some(Param::from_tensor(self.upload::<1>(b)))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(self.upload::<2>(w).transpose()),
            bias,
        })
    }

    /// `nn.LayerNorm` (eps 1e-5, the torch default every ConsistentID norm uses).
    pub fn layer_norm(&mut self, prefix: &str) -> Result<LayerNorm> {
        let w = self.take(&format!("{prefix}.weight"), 1)?;
        let b = self.take(&format!("{prefix}.bias"), 1)?;
        let n = w.shape[0];
        if b.shape[0] != n {
            return Err(self.mismatch(format!("`{prefix}` weight and bias differ")));
        }
        let mut norm = LayerNormConfig::new(n).init(self.device);
        norm.gamma = Param::from_tensor(self.upload::<1>(w));
        norm.beta = Some(Param::from_tensor(self.upload::<1>(b)));
        Ok(norm)
    }
}

/// A linear layer's input width.
pub fn d_in(l: &Linear) -> usize {
    l.weight.dims()[0]
}

/// A linear layer's output width.
pub fn d_out(l: &Linear) -> usize {
    l.weight.dims()[1]
}

/// A layer norm's width.
pub fn width(n: &LayerNorm) -> usize {
    n.gamma.dims()[0]
}
