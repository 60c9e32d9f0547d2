//! Plain tensor layers loaded by checkpoint name from a torch state dict (ModuleList indices
//! kept as they are): Linear, LayerNorm, GELU, with the shapes checked on load.

use std::collections::HashMap;

use burn::tensor::activation::gelu;
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

    pub fn linear(&mut self, prefix: &str, bias: bool) -> Result<Linear> {
        let w = self.take(&format!("{prefix}.weight"), 2)?;
        let (out, inp) = (w.shape[0], w.shape[1]);
        let bias = if bias {
            let b = self.take(&format!("{prefix}.bias"), 1)?;
            if b.shape[0] != out {
                return Err(self.mismatch(format!("`{prefix}.bias` does not match its weight")));
            }
            Some(self.upload::<1>(b).reshape([1, 1, out]))
        } else {
            None
        };
        let weight = self.upload::<2>(w).transpose().reshape([1, inp, out]);
        Ok(Linear {
            weight,
            bias,
            inp,
            out,
        })
    }

    pub fn layer_norm(&mut self, prefix: &str) -> Result<LayerNorm> {
        let w = self.take(&format!("{prefix}.weight"), 1)?;
        let b = self.take(&format!("{prefix}.bias"), 1)?;
        let n = w.shape[0];
        if b.shape[0] != n {
            return Err(self.mismatch(format!("`{prefix}` weight and bias differ")));
        }
        Ok(LayerNorm {
            weight: self.upload::<1>(w).reshape([1, 1, n]),
            bias: self.upload::<1>(b).reshape([1, 1, n]),
            size: n,
        })
    }
}

/// `nn.Linear`, weight stored as `[1, in, out]` for batched matmul.
pub struct Linear {
    weight: Tensor<3>,
    bias: Option<Tensor<3>>,
    pub inp: usize,
    pub out: usize,
}

impl Linear {
    /// # Shapes
    /// - `x`: `[b, n, in]` → `[b, n, out]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let y = x.matmul(self.weight.clone().expand([b, self.inp, self.out]));
        match &self.bias {
            Some(bias) => y + bias.clone(),
            None => y,
        }
    }
}

/// `nn.LayerNorm` (eps 1e-5).
pub struct LayerNorm {
    weight: Tensor<3>,
    bias: Tensor<3>,
    pub size: usize,
}

impl LayerNorm {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let mean = x.clone().mean_dim(2);
        let centred = x - mean;
        let var = centred.clone().square().mean_dim(2);
        centred / (var + 1e-5).sqrt() * self.weight.clone() + self.bias.clone()
    }
}

/// Exact (erf) GELU.
pub fn gelu3(x: Tensor<3>) -> Tensor<3> {
    gelu(x)
}
