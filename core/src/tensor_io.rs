//! Named tensors to and from safetensors bytes: the stage runner's input and output format.
//!
//! Outputs are always f32 (ids i64) with fixed names, so they compare directly with tensors
//! saved from diffusers/transformers.

use burn::tensor::{DType, Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{Error, Result};

/// A tensor ready to be written: name, shape and little-endian data.
pub struct NamedTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl NamedTensor {
    /// An f32 tensor from a burn tensor of any float dtype.
    pub fn f32<const D: usize>(name: &str, tensor: Tensor<D>) -> Self {
        let data = tensor.cast(DType::F32).into_data();
        let shape = data.shape().to_vec();
        let values = data
            .try_to_vec::<f32>()
            .expect("a tensor cast to f32 converts to f32 values");
        Self::from_f32(name, shape, &values)
    }

    /// An f32 tensor from plain values.
    pub fn from_f32(name: &str, shape: Vec<usize>, values: &[f32]) -> Self {
        Self {
            name: name.to_string(),
            dtype: Dtype::F32,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An i64 tensor from plain values.
    pub fn from_i64(name: &str, shape: Vec<usize>, values: &[i64]) -> Self {
        Self {
            name: name.to_string(),
            dtype: Dtype::I64,
            shape,
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Serialises tensors (with optional string metadata) to safetensors bytes.
pub fn to_safetensors(
    tensors: &[NamedTensor],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| Error::Input {
                    name: t.name.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::tensor::serialize(views, metadata).map_err(|e| Error::Input {
        name: "output".into(),
        reason: e.to_string(),
    })
}

/// Read access to the tensors of a safetensors buffer.
pub struct TensorFile<'a> {
    file: SafeTensors<'a>,
    path: String,
}

impl<'a> TensorFile<'a> {
    /// Parses a safetensors buffer; `path` names it in errors.
    pub fn parse(path: &str, bytes: &'a [u8]) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| Error::WeightFile {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            file,
            path: path.to_string(),
        })
    }

    /// [`Self::parse`] for a file the user gives as input: its errors say "input", not
    /// "weight file".
    pub fn parse_input(path: &str, bytes: &'a [u8]) -> Result<Self> {
        Self::parse(path, bytes).map_err(|e| match e {
            Error::WeightFile { path, reason } => Error::Input {
                name: path,
                reason: format!("not a readable safetensors file ({reason})"),
            },
            other => other,
        })
    }

    /// Names of all tensors.
    pub fn names(&self) -> Vec<String> {
        self.file.names().into_iter().map(str::to_string).collect()
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>> {
        self.file.tensor(name).map_err(|_| Error::Input {
            name: name.to_string(),
            reason: format!("not found in `{}`", self.path),
        })
    }

    /// A float tensor (f64, f32, f16 or bf16 on disk) as f32 values and its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let v = self.view(name)?;
        let data = v.data();
        let values = match v.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")) as f32)
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::Input {
                    name: name.to_string(),
                    reason: format!("expected a float tensor, found {other:?}"),
                });
            }
        };
        Ok((values, v.shape().to_vec()))
    }

    /// A float tensor as f64 values (exact for f64 files) and its shape.
    pub fn f64(&self, name: &str) -> Result<(Vec<f64>, Vec<usize>)> {
        let v = self.view(name)?;
        if v.dtype() == Dtype::F64 {
            let values = v
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8")))
                .collect();
            return Ok((values, v.shape().to_vec()));
        }
        let (values, shape) = self.f32(name)?;
        Ok((values.into_iter().map(f64::from).collect(), shape))
    }

    /// An integer tensor (i64, i32 or u8 on disk) as i64 values and its shape.
    pub fn i64(&self, name: &str) -> Result<(Vec<i64>, Vec<usize>)> {
        let v = self.view(name)?;
        let data = v.data();
        let values = match v.dtype() {
            Dtype::I64 => data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
                .collect(),
            Dtype::I32 => data
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("chunk of 4")) as i64)
                .collect(),
            Dtype::U8 => data.iter().map(|&b| i64::from(b)).collect(),
            other => {
                return Err(Error::Input {
                    name: name.to_string(),
                    reason: format!("expected an integer tensor, found {other:?}"),
                });
            }
        };
        Ok((values, v.shape().to_vec()))
    }

    /// A float tensor of rank `D` on `device`, as f32.
    pub fn tensor<const D: usize>(
        &self,
        name: &str,
        device: &burn::tensor::Device,
    ) -> Result<Tensor<D>> {
        let (values, shape) = self.f32(name)?;
        if shape.len() != D {
            return Err(Error::Input {
                name: name.to_string(),
                reason: format!("expected rank {D}, found shape {shape:?}"),
            });
        }
        if shape.contains(&0) {
            return Err(Error::Input {
                name: name.to_string(),
                reason: format!("empty tensor of shape {shape:?}"),
            });
        }
        check_finite(name, &values)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    }
}

/// NaN or infinite values in an input are an error (they would silently give a black image).
pub fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::Input {
            name: name.to_string(),
            reason: format!(
                "value {i} is {} (NaN or infinite values are not allowed)",
                values[i]
            ),
        }),
    }
}
