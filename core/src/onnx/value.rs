//! Runtime values of an ONNX graph: float tensors on the device, integer tensors on the host.
//!
//! Graph ranks are only known at run time while burn tensors carry their rank in the type, so
//! every float value is stored as a rank-[`MAX_RANK`] tensor whose leading axes are 1, next to
//! its logical shape. Left-padding with 1s is exactly numpy's broadcasting alignment, so
//! element-wise ops work on the padded tensors directly. Integer values (shapes, indices,
//! axes) are small and steer control flow, so they stay on the host.

use burn::tensor::{DType, Device, Tensor, TensorData};

/// The highest tensor rank the executor handles.
pub const MAX_RANK: usize = 6;

/// A float tensor on the device with its logical (unpadded) shape.
#[derive(Clone, Debug)]
pub struct FloatValue {
    pub tensor: Tensor<MAX_RANK>,
    pub shape: Vec<usize>,
}

/// An integer (or boolean) tensor on the host, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct IntValue {
    pub shape: Vec<usize>,
    pub data: Vec<i64>,
}

/// Any value flowing along a graph edge. (Values move rarely, so the size difference between
/// the variants does not matter.)
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Value {
    Float(FloatValue),
    Int(IntValue),
}

/// `shape` padded on the left with 1s to [`MAX_RANK`] axes.
pub fn padded(shape: &[usize]) -> [usize; MAX_RANK] {
    let mut out = [1; MAX_RANK];
    out[MAX_RANK - shape.len()..].copy_from_slice(shape);
    out
}

impl FloatValue {
    /// Uploads host values. `shape` must have at most [`MAX_RANK`] axes and match `values`.
    pub fn from_host(shape: Vec<usize>, values: Vec<f32>, device: &Device) -> Self {
        let tensor = Tensor::from_data(TensorData::new(values, padded(&shape)), device);
        Self { tensor, shape }
    }

    /// Wraps a burn tensor of any rank up to [`MAX_RANK`].
    pub fn from_tensor<const D: usize>(tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        Self {
            tensor: tensor.reshape(padded(&shape)),
            shape,
        }
    }

    /// The same data under a new logical shape (same element count).
    pub fn reshaped(self, shape: Vec<usize>) -> Self {
        Self {
            tensor: self.tensor.reshape(padded(&shape)),
            shape,
        }
    }

    /// The tensor as rank `D`; the caller has checked that the logical rank is `D`.
    pub fn to_rank<const D: usize>(&self) -> Tensor<D> {
        let mut dims = [1; D];
        dims.copy_from_slice(&self.shape);
        self.tensor.clone().reshape(dims)
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Downloads the values as f32 (a device sync).
    pub fn to_host(&self) -> Vec<f32> {
        self.tensor
            .clone()
            .cast(DType::F32)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    /// Downloads the values as f32 without blocking (the only read WebGPU offers).
    pub async fn to_host_async(&self) -> crate::Result<Vec<f32>> {
        self.tensor
            .clone()
            .cast(DType::F32)
            .into_data_async()
            .await
            .map_err(|e| crate::Error::Readback(format!("{e:?}")))?
            .try_to_vec::<f32>()
            .map_err(|e| crate::Error::Readback(format!("{e:?}")))
    }
}

impl IntValue {
    pub fn new(shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self { shape, data }
    }

    /// A rank-1 tensor.
    pub fn vector(data: Vec<i64>) -> Self {
        Self {
            shape: vec![data.len()],
            data,
        }
    }
}

impl Value {
    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Float(v) => &v.shape,
            Value::Int(v) => &v.shape,
        }
    }
}
