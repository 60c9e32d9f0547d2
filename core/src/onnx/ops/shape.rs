//! Shape ops, constants and casts. Integer tensors stay on the host; float ones on the device.

use burn::tensor::Tensor;

use super::super::model::HostTensor;
use super::super::value::{FloatValue, IntValue, MAX_RANK, Value, padded};
use super::{OpContext, float_to_int, host, index_tensor, int_to_float};
use crate::Result;

fn check_rank(ctx: &OpContext, shape: &[usize]) -> Result<()> {
    if shape.len() > MAX_RANK {
        return Err(ctx.err(format!(
            "rank {} is above the supported {MAX_RANK}",
            shape.len()
        )));
    }
    Ok(())
}

/// The same data under `shape` (element counts already checked).
fn with_shape(v: Value, shape: Vec<usize>) -> Value {
    match v {
        Value::Float(f) => Value::Float(f.reshaped(shape)),
        Value::Int(i) => Value::Int(IntValue::new(shape, i.data)),
    }
}

pub fn shape(ctx: &OpContext) -> Result<Value> {
    let s = ctx.input(0)?.shape();
    let r = s.len() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clampi(ctx.attr_int("start", 0)?);
    let end = clampi(ctx.attr_int("end", r)?);
    let dims: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
    Ok(Value::Int(IntValue::vector(dims)))
}

pub fn reshape(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?.clone();
    let target = ctx.int(1)?.data;
    let allow_zero = ctx.attr_int("allowzero", 0)? != 0;
    let old = v.shape().to_vec();
    let n: usize = old.iter().product();
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                shape.push(1);
            }
            0 if !allow_zero => shape.push(
                *old.get(i)
                    .ok_or_else(|| ctx.err("0 copies a missing axis"))?,
            ),
            d if d >= 0 => shape.push(d as usize),
            _ => return Err(ctx.err(format!("bad target shape {target:?}"))),
        }
    }
    let known: usize = shape.iter().product();
    if let Some(i) = infer {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(ctx.err(format!("cannot reshape {old:?} to {target:?}")));
        }
        shape[i] = n / known;
    } else if known != n {
        return Err(ctx.err(format!("cannot reshape {old:?} to {target:?}")));
    }
    check_rank(ctx, &shape)?;
    Ok(with_shape(v, shape))
}

pub fn flatten(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?.clone();
    let s = v.shape().to_vec();
    let r = s.len() as i64;
    let axis = ctx.attr_int("axis", 1)?;
    let axis = if axis < 0 { axis + r } else { axis };
    if !(0..=r).contains(&axis) {
        return Err(ctx.err(format!("axis {axis} is out of range for rank {r}")));
    }
    let rows: usize = s[..axis as usize].iter().product();
    let cols: usize = s[axis as usize..].iter().product();
    Ok(with_shape(v, vec![rows, cols]))
}

pub fn transpose(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?;
    let r = v.shape().len();
    let perm: Vec<usize> = match ctx.attr_ints("perm")? {
        Some(p) => p.iter().map(|&a| ctx.axis(a, r)).collect::<Result<_>>()?,
        None => (0..r).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..r).collect::<Vec<_>>() {
        return Err(ctx.err(format!("perm {perm:?} is not a permutation of {r} axes")));
    }
    Ok(match v {
        Value::Int(i) => Value::Int(host::transpose(i, &perm)),
        Value::Float(f) => {
            let offset = MAX_RANK - r;
            let mut full = [0; MAX_RANK];
            for (a, slot) in full.iter_mut().enumerate() {
                *slot = if a < offset {
                    a
                } else {
                    perm[a - offset] + offset
                };
            }
            let shape: Vec<usize> = perm.iter().map(|&p| f.shape[p]).collect();
            Value::Float(FloatValue {
                tensor: f.tensor.clone().permute(full),
                shape,
            })
        }
    })
}

pub fn concat(ctx: &OpContext) -> Result<Value> {
    let values: Vec<&Value> = (0..ctx.inputs.len())
        .map(|i| ctx.input(i))
        .collect::<Result<_>>()?;
    let first = values.first().ok_or_else(|| ctx.err("no inputs"))?;
    let r = first.shape().len();
    let axis = ctx.axis(ctx.attr_int("axis", 0)?, r)?;
    for v in &values {
        let s = v.shape();
        let fits = s.len() == r && (0..r).all(|a| a == axis || s[a] == first.shape()[a]);
        if !fits {
            return Err(ctx.err(format!(
                "shapes {:?} and {:?} do not concatenate on axis {axis}",
                first.shape(),
                s
            )));
        }
    }
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        let ints: Vec<IntValue> = (0..values.len())
            .map(|i| ctx.int(i))
            .collect::<Result<_>>()?;
        return Ok(Value::Int(host::concat(&ints, axis)));
    }
    let floats: Vec<FloatValue> = (0..values.len())
        .map(|i| ctx.float(i))
        .collect::<Result<_>>()?;
    let mut shape = floats[0].shape.clone();
    shape[axis] = floats.iter().map(|f| f.shape[axis]).sum();
    // Empty inputs contribute nothing (exporters emit them for dynamic shapes).
    let tensors: Vec<Tensor<MAX_RANK>> = floats
        .into_iter()
        .filter(|f| f.num_elements() > 0)
        .map(|f| f.tensor)
        .collect();
    if tensors.is_empty() {
        return Ok(Value::Int(IntValue::new(shape, Vec::new())));
    }
    let tensor = Tensor::cat(tensors, axis + MAX_RANK - r);
    Ok(Value::Float(FloatValue { tensor, shape }))
}

/// Normalises indices against an axis of `dim` entries (negative ones count from the end).
fn wrap_indices(ctx: &OpContext, indices: &[i64], dim: usize) -> Result<Vec<usize>> {
    indices
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + dim as i64 } else { i };
            if (0..dim as i64).contains(&j) {
                Ok(j as usize)
            } else {
                Err(ctx.err(format!("index {i} is out of range for an axis of {dim}")))
            }
        })
        .collect()
}

pub fn gather(ctx: &OpContext) -> Result<Value> {
    let data = ctx.input(0)?;
    let indices = ctx.int(1)?;
    let s = data.shape().to_vec();
    let axis = ctx.axis(ctx.attr_int("axis", 0)?, s.len())?;
    let idx = wrap_indices(ctx, &indices.data, s[axis])?;
    let mut shape = s[..axis].to_vec();
    shape.extend(&indices.shape);
    shape.extend(&s[axis + 1..]);
    check_rank(ctx, &shape)?;
    Ok(match data {
        Value::Int(i) => Value::Int(IntValue::new(shape, host::select(i, axis, &idx).data)),
        Value::Float(f) => {
            let offset = MAX_RANK - s.len();
            let tensor = f
                .tensor
                .clone()
                .select(axis + offset, index_tensor(&idx, ctx.device));
            Value::Float(FloatValue {
                tensor: tensor.reshape(padded(&shape)),
                shape,
            })
        }
    })
}

/// Axes from the attribute (before opset 13) or input 1.
fn axes_arg(ctx: &OpContext) -> Result<Option<Vec<i64>>> {
    if ctx.opset >= 13 {
        Ok(if ctx.has_input(1) {
            Some(ctx.int(1)?.data)
        } else {
            None
        })
    } else {
        ctx.attr_ints("axes")
    }
}

pub fn unsqueeze(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?.clone();
    let axes = axes_arg(ctx)?.ok_or_else(|| ctx.err("no axes"))?;
    let r = v.shape().len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| ctx.axis(a, r))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    let mut old = v.shape().iter();
    let shape: Vec<usize> = (0..r)
        .map(|a| {
            if axes.contains(&a) {
                1
            } else {
                *old.next().unwrap_or(&1)
            }
        })
        .collect();
    check_rank(ctx, &shape)?;
    Ok(with_shape(v, shape))
}

pub fn squeeze(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?.clone();
    let s = v.shape().to_vec();
    let axes: Vec<usize> = match axes_arg(ctx)? {
        Some(a) => a
            .iter()
            .map(|&x| ctx.axis(x, s.len()))
            .collect::<Result<_>>()?,
        None => (0..s.len()).filter(|&a| s[a] == 1).collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| s[a] != 1) {
        return Err(ctx.err(format!("axis {a} of {s:?} is not 1")));
    }
    let shape = (0..s.len())
        .filter(|a| !axes.contains(a))
        .map(|a| s[a])
        .collect();
    Ok(with_shape(v, shape))
}

pub fn slice(ctx: &OpContext) -> Result<Value> {
    let v = ctx.input(0)?.clone();
    let s = v.shape().to_vec();
    let (starts, ends, axes, steps) = if ctx.opset < 10 {
        let starts = ctx.attr_ints("starts")?.unwrap_or_default();
        let ends = ctx.attr_ints("ends")?.unwrap_or_default();
        (starts, ends, ctx.attr_ints("axes")?, None)
    } else {
        let opt = |i: usize| -> Result<Option<Vec<i64>>> {
            Ok(if ctx.has_input(i) {
                Some(ctx.int(i)?.data)
            } else {
                None
            })
        };
        (ctx.int(1)?.data, ctx.int(2)?.data, opt(3)?, opt(4)?)
    };
    let axes: Vec<i64> = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(ctx.err("starts, ends, axes and steps differ in length"));
    }
    let mut out = v;
    for k in 0..starts.len() {
        let axis = ctx.axis(axes[k], s.len())?;
        let dim = s[axis] as i64;
        let step = steps[k];
        if step == 0 {
            return Err(ctx.err("step 0"));
        }
        let norm = |x: i64| if x < 0 { x + dim } else { x };
        let (start, end) = if step > 0 {
            (norm(starts[k]).clamp(0, dim), norm(ends[k]).clamp(0, dim))
        } else {
            (
                norm(starts[k]).clamp(0, dim - 1),
                norm(ends[k]).clamp(-1, dim - 1),
            )
        };
        let mut idx = Vec::new();
        let mut i = start;
        while (step > 0 && i < end) || (step < 0 && i > end) {
            idx.push(i as usize);
            i += step;
        }
        out = select_axis(ctx, out, axis, &idx);
    }
    Ok(out)
}

/// Keeps entries `idx` of `axis` (an empty list gives an empty tensor).
fn select_axis(ctx: &OpContext, v: Value, axis: usize, idx: &[usize]) -> Value {
    let dim = v.shape()[axis];
    if idx.len() == dim && idx.iter().enumerate().all(|(a, &b)| a == b) {
        return v;
    }
    match v {
        Value::Int(i) => Value::Int(host::select(&i, axis, idx)),
        Value::Float(f) if idx.is_empty() => {
            let mut shape = f.shape.clone();
            shape[axis] = 0;
            Value::Int(IntValue::new(shape, Vec::new()))
        }
        Value::Float(f) => {
            let r = f.shape.len();
            let tensor = f
                .tensor
                .select(axis + MAX_RANK - r, index_tensor(idx, ctx.device));
            let mut shape = f.shape;
            shape[axis] = idx.len();
            Value::Float(FloatValue { tensor, shape })
        }
    }
}

fn host_value(ctx: &OpContext, t: HostTensor) -> Value {
    match t {
        HostTensor::Float { shape, data } => {
            Value::Float(FloatValue::from_host(shape, data, ctx.device))
        }
        HostTensor::Int { shape, data } => Value::Int(IntValue::new(shape, data)),
    }
}

pub fn constant(ctx: &OpContext) -> Result<Value> {
    if let Some(t) = ctx.attr_tensor("value")? {
        check_rank(ctx, t.shape())?;
        return Ok(host_value(ctx, t));
    }
    if ctx.node.attributes.contains_key("value_float") {
        let f = ctx.attr_float("value_float", 0.0)?;
        return Ok(host_value(
            ctx,
            HostTensor::Float {
                shape: vec![],
                data: vec![f],
            },
        ));
    }
    if let Some(f) = ctx.attr_floats("value_floats")? {
        return Ok(host_value(
            ctx,
            HostTensor::Float {
                shape: vec![f.len()],
                data: f,
            },
        ));
    }
    if ctx.node.attributes.contains_key("value_int") {
        let i = ctx.attr_int("value_int", 0)?;
        return Ok(Value::Int(IntValue::new(vec![], vec![i])));
    }
    if let Some(i) = ctx.attr_ints("value_ints")? {
        return Ok(Value::Int(IntValue::vector(i)));
    }
    Err(ctx.err("no supported value attribute"))
}

pub fn constant_of_shape(ctx: &OpContext) -> Result<Value> {
    let dims = ctx.int(0)?.data;
    if dims.iter().any(|&d| d < 0) {
        return Err(ctx.err(format!("negative shape {dims:?}")));
    }
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    check_rank(ctx, &shape)?;
    let n: usize = shape.iter().product();
    Ok(match ctx.attr_tensor("value")? {
        Some(HostTensor::Int { data, .. }) => Value::Int(IntValue::new(
            shape,
            vec![data.first().copied().unwrap_or(0); n],
        )),
        Some(HostTensor::Float { data, .. }) => Value::Float(FloatValue::from_host(
            shape,
            vec![data.first().copied().unwrap_or(0.0); n],
            ctx.device,
        )),
        None => Value::Float(FloatValue::from_host(shape, vec![0.0; n], ctx.device)),
    })
}

pub fn cast(ctx: &OpContext) -> Result<Value> {
    use super::super::proto::data_type::*;
    let to = ctx.attr_int("to", 0)? as i32;
    let v = ctx.input(0)?;
    Ok(match (to, v) {
        (FLOAT | DOUBLE | FLOAT16 | BFLOAT16, Value::Float(f)) => Value::Float(f.clone()),
        (FLOAT | DOUBLE | FLOAT16 | BFLOAT16, Value::Int(i)) => {
            Value::Float(int_to_float(i, ctx.device))
        }
        (INT64 | INT32 | INT8 | UINT8, Value::Float(f)) => Value::Int(float_to_int(f)),
        (BOOL, Value::Float(f)) => Value::Int(IntValue::new(
            f.shape.clone(),
            f.to_host().iter().map(|&x| (x != 0.0) as i64).collect(),
        )),
        (INT64 | INT32 | INT8 | UINT8, Value::Int(i)) => Value::Int(i.clone()),
        (BOOL, Value::Int(i)) => Value::Int(IntValue::new(
            i.shape.clone(),
            i.data.iter().map(|&x| (x != 0) as i64).collect(),
        )),
        (other, _) => return Err(ctx.err(format!("cast to data type {other} is not supported"))),
    })
}
