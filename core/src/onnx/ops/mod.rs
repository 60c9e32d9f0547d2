//! The op set: dispatch from an ONNX node to burn tensor ops.
//!
//! Each op first works out its output shape on the host and rejects inputs that do not fit, so
//! a malformed graph is an error naming the node rather than a panic inside a kernel.

mod elementwise;
mod host;
mod nn;
mod resize;
mod shape;

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::model::{Attribute, HostTensor, Node};
use super::value::{FloatValue, IntValue, Value};
use crate::{Error, Result};

/// Every op the executor runs (default ONNX domain).
pub const SUPPORTED_OPS: &[&str] = &[
    // element-wise
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Relu",
    "PRelu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Exp",
    "Sqrt",
    "Neg",
    "Abs",
    "Clip",
    "Identity",
    "Dropout",
    // networks
    "Conv",
    "BatchNormalization",
    "InstanceNormalization",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "Gemm",
    "MatMul",
    "Softmax",
    "Resize",
    "Upsample",
    // shapes and constants
    "Shape",
    "Reshape",
    "Flatten",
    "Transpose",
    "Concat",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Slice",
    "Constant",
    "ConstantOfShape",
    "Cast",
];

/// What an op sees: its node, its inputs (`None` where an optional input is absent), the device.
pub struct OpContext<'a> {
    pub node: &'a Node,
    pub inputs: Vec<Option<Value>>,
    pub device: &'a Device,
    pub opset: i64,
}

impl OpContext<'_> {
    /// An error naming this node.
    pub fn err(&self, reason: impl Into<String>) -> Error {
        Error::OnnxNode {
            node: self.node.name.clone(),
            op: self.node.op.clone(),
            reason: reason.into(),
        }
    }

    pub fn input(&self, i: usize) -> Result<&Value> {
        self.inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| self.err(format!("input {i} is missing")))
    }

    pub fn has_input(&self, i: usize) -> bool {
        matches!(self.inputs.get(i), Some(Some(_)))
    }

    /// Input `i` as a float tensor (integer inputs are uploaded).
    pub fn float(&self, i: usize) -> Result<FloatValue> {
        Ok(match self.input(i)? {
            Value::Float(v) => v.clone(),
            Value::Int(v) => int_to_float(v, self.device),
        })
    }

    /// Input `i` as host integers (float inputs are downloaded and truncated).
    pub fn int(&self, i: usize) -> Result<IntValue> {
        Ok(match self.input(i)? {
            Value::Int(v) => v.clone(),
            Value::Float(v) => float_to_int(v),
        })
    }

    /// Input `i` as host floats (small parameter tensors such as Resize scales).
    pub fn host_floats(&self, i: usize) -> Result<Vec<f32>> {
        Ok(match self.input(i)? {
            Value::Float(v) => v.to_host(),
            Value::Int(v) => v.data.iter().map(|&x| x as f32).collect(),
        })
    }

    fn attr(&self, name: &str) -> Option<&Attribute> {
        self.node.attributes.get(name)
    }

    pub fn attr_int(&self, name: &str, default: i64) -> Result<i64> {
        match self.attr(name) {
            None => Ok(default),
            Some(Attribute::Int(v)) => Ok(*v),
            Some(_) => Err(self.err(format!("attribute `{name}` is not an integer"))),
        }
    }

    pub fn attr_float(&self, name: &str, default: f32) -> Result<f32> {
        match self.attr(name) {
            None => Ok(default),
            Some(Attribute::Float(v)) => Ok(*v),
            Some(Attribute::Int(v)) => Ok(*v as f32),
            Some(_) => Err(self.err(format!("attribute `{name}` is not a float"))),
        }
    }

    pub fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(Attribute::Ints(v)) => Ok(Some(v.clone())),
            Some(Attribute::Int(v)) => Ok(Some(vec![*v])),
            Some(_) => Err(self.err(format!("attribute `{name}` is not a list of integers"))),
        }
    }

    pub fn attr_floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.attr(name) {
            None => Ok(None),
            Some(Attribute::Floats(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.err(format!("attribute `{name}` is not a list of floats"))),
        }
    }

    pub fn attr_string(&self, name: &str, default: &str) -> Result<String> {
        match self.attr(name) {
            None => Ok(default.to_string()),
            Some(Attribute::String(v)) => Ok(v.clone()),
            Some(_) => Err(self.err(format!("attribute `{name}` is not a string"))),
        }
    }

    pub fn attr_tensor(&self, name: &str) -> Result<Option<HostTensor>> {
        match self.attr(name) {
            None => Ok(None),
            Some(Attribute::Tensor(t)) => Ok(Some(t.clone())),
            Some(_) => Err(self.err(format!("attribute `{name}` is not a tensor"))),
        }
    }

    /// Normalises a possibly negative axis for a tensor of `rank` axes.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if (0..r).contains(&a) {
            Ok(a as usize)
        } else {
            Err(self.err(format!("axis {axis} is out of range for rank {rank}")))
        }
    }

    /// The float input `i`, checked to have rank `rank`.
    pub fn float_rank(&self, i: usize, rank: usize) -> Result<FloatValue> {
        let v = self.float(i)?;
        if v.rank() != rank {
            return Err(self.err(format!(
                "input {i} has shape {:?}, expected rank {rank}",
                v.shape
            )));
        }
        Ok(v)
    }
}

/// Uploads host integers as floats.
pub fn int_to_float(v: &IntValue, device: &Device) -> FloatValue {
    FloatValue::from_host(
        v.shape.clone(),
        v.data.iter().map(|&x| x as f32).collect(),
        device,
    )
}

/// Downloads floats, truncating toward zero as ONNX Cast does.
pub fn float_to_int(v: &FloatValue) -> IntValue {
    IntValue::new(
        v.shape.clone(),
        v.to_host().into_iter().map(|x| x as i64).collect(),
    )
}

/// Host indices as a device index tensor.
pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

/// Runs one node.
pub fn run(ctx: &OpContext) -> Result<Vec<Value>> {
    let out = match ctx.node.op.as_str() {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" => elementwise::binary(ctx)?,
        "PRelu" => elementwise::prelu(ctx)?,
        "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Neg" | "Abs" | "Clip" => {
            elementwise::unary(ctx)?
        }
        "Identity" | "Dropout" => ctx.input(0)?.clone(),
        "Conv" => nn::conv(ctx)?,
        "BatchNormalization" => nn::batch_norm(ctx)?,
        "InstanceNormalization" => nn::instance_norm(ctx)?,
        "MaxPool" | "AveragePool" => nn::pool(ctx)?,
        "GlobalAveragePool" | "GlobalMaxPool" => nn::global_pool(ctx)?,
        "ReduceMean" | "ReduceSum" | "ReduceMax" => nn::reduce(ctx)?,
        "Gemm" => nn::gemm(ctx)?,
        "MatMul" => nn::matmul(ctx)?,
        "Softmax" => nn::softmax(ctx)?,
        "Resize" | "Upsample" => resize::resize(ctx)?,
        "Shape" => shape::shape(ctx)?,
        "Reshape" => shape::reshape(ctx)?,
        "Flatten" => shape::flatten(ctx)?,
        "Transpose" => shape::transpose(ctx)?,
        "Concat" => shape::concat(ctx)?,
        "Gather" => shape::gather(ctx)?,
        "Unsqueeze" => shape::unsqueeze(ctx)?,
        "Squeeze" => shape::squeeze(ctx)?,
        "Slice" => shape::slice(ctx)?,
        "Constant" => shape::constant(ctx)?,
        "ConstantOfShape" => shape::constant_of_shape(ctx)?,
        "Cast" => shape::cast(ctx)?,
        other => {
            return Err(Error::UnsupportedOp {
                op: other.to_string(),
                node: ctx.node.name.clone(),
            });
        }
    };
    Ok(vec![out])
}
