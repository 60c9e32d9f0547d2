//! Element-wise ops with numpy broadcasting.

use burn::tensor::activation;

use super::super::value::{FloatValue, Value, padded};
use super::{OpContext, host};
use crate::Result;

/// Add, Sub, Mul, Div, Pow.
pub fn binary(ctx: &OpContext) -> Result<Value> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let out = host::broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
        ctx.err(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        ))
    })?;
    if let (Value::Int(a), Value::Int(b)) = (a, b) {
        let f = match ctx.node.op.as_str() {
            "Add" => |x: i64, y: i64| x.wrapping_add(y),
            "Sub" => |x: i64, y: i64| x.wrapping_sub(y),
            "Mul" => |x: i64, y: i64| x.wrapping_mul(y),
            "Div" => |x: i64, y: i64| if y == 0 { 0 } else { x / y },
            _ => |x: i64, y: i64| x.pow(y.clamp(0, 62) as u32),
        };
        return Ok(Value::Int(host::binary(a, b, &out, f)));
    }
    if out.len() > super::super::value::MAX_RANK {
        return Err(ctx.err("rank above the supported maximum"));
    }
    let (a, b) = (ctx.float(0)?.tensor, ctx.float(1)?.tensor);
    let tensor = match ctx.node.op.as_str() {
        "Add" => a.add(b),
        "Sub" => a.sub(b),
        "Mul" => a.mul(b),
        "Div" => a.div(b),
        _ => a.powf(b),
    };
    // Broadcasting may have produced the padded shape already; make it exact.
    let tensor = tensor.reshape(padded(&out));
    Ok(Value::Float(FloatValue { tensor, shape: out }))
}

/// PRelu: `x` where positive, `slope * x` elsewhere (slope broadcasts to `x`).
pub fn prelu(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    let slope = ctx.float(1)?;
    match host::broadcast_shapes(&x.shape, &slope.shape) {
        Some(s) if s == x.shape => {}
        _ => {
            return Err(ctx.err(format!(
                "slope {:?} does not broadcast to input {:?}",
                slope.shape, x.shape
            )));
        }
    }
    let t = x.tensor.clone();
    let tensor = t
        .clone()
        .clamp_min(0.0)
        .add(t.clamp_max(0.0).mul(slope.tensor));
    Ok(Value::Float(FloatValue {
        tensor,
        shape: x.shape,
    }))
}

/// Relu, LeakyRelu, Sigmoid, Tanh, Exp, Sqrt, Neg, Abs, Clip.
pub fn unary(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    let t = x.tensor;
    let tensor = match ctx.node.op.as_str() {
        "Relu" => activation::relu(t),
        "LeakyRelu" => activation::leaky_relu(t, ctx.attr_float("alpha", 0.01)? as f64),
        "Sigmoid" => activation::sigmoid(t),
        "Tanh" => t.tanh(),
        "Exp" => t.exp(),
        "Sqrt" => t.sqrt(),
        "Neg" => t.neg(),
        "Abs" => t.abs(),
        _ => {
            // Clip: bounds are attributes before opset 11, optional inputs after.
            let (min, max) = if ctx.opset < 11 {
                (
                    ctx.attr_float("min", f32::NEG_INFINITY)?,
                    ctx.attr_float("max", f32::INFINITY)?,
                )
            } else {
                let bound = |i: usize, default: f32| -> Result<f32> {
                    if ctx.has_input(i) {
                        Ok(ctx.host_floats(i)?.first().copied().unwrap_or(default))
                    } else {
                        Ok(default)
                    }
                };
                (bound(1, f32::NEG_INFINITY)?, bound(2, f32::INFINITY)?)
            };
            t.clamp_min(min).clamp_max(max)
        }
    };
    Ok(Value::Float(FloatValue {
        tensor,
        shape: x.shape,
    }))
}
