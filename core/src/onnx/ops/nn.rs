//! Network ops: convolution, normalisation, pooling, reductions, matrix products, softmax.

use burn::tensor::Tensor;
use burn::tensor::activation;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};

use super::super::value::{FloatValue, MAX_RANK, Value, padded};
use super::{OpContext, host};
use crate::Result;

/// Per-axis (begin, end) padding of a 2-D window op from `pads` / `auto_pad`.
fn window_padding(
    ctx: &OpContext,
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
) -> Result<[(usize, usize); 2]> {
    let auto_pad = ctx.attr_string("auto_pad", "NOTSET")?;
    match auto_pad.as_str() {
        "NOTSET" => {
            let pads = ctx.attr_ints("pads")?.unwrap_or_else(|| vec![0; 4]);
            if pads.len() != 4 || pads.iter().any(|&p| p < 0) {
                return Err(ctx.err(format!("pads {pads:?} are not 4 non-negative values")));
            }
            Ok([
                (pads[0] as usize, pads[2] as usize),
                (pads[1] as usize, pads[3] as usize),
            ])
        }
        "VALID" => Ok([(0, 0); 2]),
        "SAME_UPPER" | "SAME_LOWER" => {
            let mut out = [(0, 0); 2];
            for a in 0..2 {
                let o = input[a].div_ceil(stride[a]);
                let needed = (o - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1;
                let total = needed.saturating_sub(input[a]);
                let small = total / 2;
                out[a] = if auto_pad == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
            }
            Ok(out)
        }
        other => Err(ctx.err(format!("auto_pad `{other}` is not supported"))),
    }
}

fn pair(ctx: &OpContext, name: &str, default: usize) -> Result<[usize; 2]> {
    match ctx.attr_ints(name)? {
        None => Ok([default; 2]),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
        Some(v) => Err(ctx.err(format!("`{name}` = {v:?}: only 2-D windows are supported"))),
    }
}

/// Conv (2-D, with groups, dilations, asymmetric pads).
pub fn conv(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float_rank(0, 4)?;
    let w = ctx.float_rank(1, 4)?;
    let groups = ctx.attr_int("group", 1)?.max(1) as usize;
    let [n, c, h, wd] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let [m, cg, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
    if c != cg * groups || m % groups != 0 {
        return Err(ctx.err(format!(
            "input {:?} and weight {:?} do not fit with {groups} group(s)",
            x.shape, w.shape
        )));
    }
    let stride = pair(ctx, "strides", 1)?;
    let dilation = pair(ctx, "dilations", 1)?;
    let pads = window_padding(ctx, [h, wd], [kh, kw], stride, dilation)?;
    let mut out_hw = [0; 2];
    for (a, (size, k)) in [(h, kh), (wd, kw)].into_iter().enumerate() {
        let span = size + pads[a].0 + pads[a].1;
        let window = (k - 1) * dilation[a] + 1;
        if span < window {
            return Err(ctx.err(format!("kernel {k} does not fit input {:?}", x.shape)));
        }
        out_hw[a] = (span - window) / stride[a] + 1;
    }
    let bias = if ctx.has_input(2) {
        let b = ctx.float(2)?;
        if b.shape != [m] {
            return Err(ctx.err(format!(
                "bias {:?} does not match {m} output channels",
                b.shape
            )));
        }
        Some(b.to_rank::<1>())
    } else {
        None
    };
    let options = ConvOptions::new_with_padding(stride, pads, dilation, groups);
    let y = conv2d(x.to_rank::<4>(), w.to_rank::<4>(), bias, options);
    debug_assert_eq!(y.dims(), [n, m, out_hw[0], out_hw[1]]);
    Ok(Value::Float(FloatValue::from_tensor(y)))
}

/// A per-channel vector [C] shaped to broadcast over axis 1 of a rank-`rank` tensor.
fn channel_vector(v: FloatValue, rank: usize) -> Tensor<MAX_RANK> {
    let mut shape = vec![1; rank];
    shape[1] = v.shape[0];
    v.reshaped(shape).tensor
}

fn check_channels(ctx: &OpContext, x: &FloatValue, inputs: std::ops::Range<usize>) -> Result<()> {
    if x.rank() < 2 {
        return Err(ctx.err(format!("input {:?} has no channel axis", x.shape)));
    }
    for i in inputs {
        let p = ctx.float(i)?;
        if p.shape != [x.shape[1]] {
            return Err(ctx.err(format!(
                "parameter {i} has shape {:?}, expected [{}]",
                p.shape, x.shape[1]
            )));
        }
    }
    Ok(())
}

/// BatchNormalization in inference mode: `(x - mean) / sqrt(var + eps) * scale + bias`.
pub fn batch_norm(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    check_channels(ctx, &x, 1..5)?;
    let eps = ctx.attr_float("epsilon", 1e-5)? as f64;
    let r = x.rank();
    let scale = channel_vector(ctx.float(1)?, r);
    let bias = channel_vector(ctx.float(2)?, r);
    let mean = channel_vector(ctx.float(3)?, r);
    let var = channel_vector(ctx.float(4)?, r);
    let a = scale.div(var.add_scalar(eps).sqrt());
    let b = bias.sub(mean.mul(a.clone()));
    let tensor = x.tensor.mul(a).add(b);
    Ok(Value::Float(FloatValue {
        tensor,
        shape: x.shape,
    }))
}

/// InstanceNormalization: per sample and channel over the spatial axes.
pub fn instance_norm(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    check_channels(ctx, &x, 1..3)?;
    if x.rank() < 3 {
        return Err(ctx.err(format!("input {:?} has no spatial axes", x.shape)));
    }
    let eps = ctx.attr_float("epsilon", 1e-5)? as f64;
    let (n, c) = (x.shape[0], x.shape[1]);
    let s: usize = x.shape[2..].iter().product();
    let t: Tensor<3> = x.tensor.clone().reshape([n, c, s]);
    let mean = t.clone().mean_dim(2);
    let centred = t.sub(mean);
    let var = centred.clone().square().mean_dim(2);
    let normed = centred.div(var.add_scalar(eps).sqrt());
    let r = x.rank();
    let scale = channel_vector(ctx.float(1)?, r);
    let bias = channel_vector(ctx.float(2)?, r);
    let tensor = normed.reshape(padded(&x.shape)).mul(scale).add(bias);
    Ok(Value::Float(FloatValue {
        tensor,
        shape: x.shape,
    }))
}

/// MaxPool and AveragePool (2-D).
pub fn pool(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float_rank(0, 4)?;
    let kernel = match ctx.attr_ints("kernel_shape")? {
        Some(k) if k.len() == 2 && k.iter().all(|&v| v > 0) => [k[0] as usize, k[1] as usize],
        other => {
            return Err(ctx.err(format!(
                "kernel_shape {other:?}: only 2-D pooling is supported"
            )));
        }
    };
    let stride = pair(ctx, "strides", 1)?;
    let dilation = pair(ctx, "dilations", 1)?;
    let pads = window_padding(ctx, [x.shape[2], x.shape[3]], kernel, stride, dilation)?;
    for a in 0..2 {
        let window = (kernel[a] - 1) * dilation[a] + 1;
        if x.shape[2 + a] + pads[a].0 + pads[a].1 < window {
            return Err(ctx.err(format!(
                "kernel {kernel:?} does not fit input {:?}",
                x.shape
            )));
        }
    }
    let ceil_mode = ctx.attr_int("ceil_mode", 0)? != 0;
    let y = if ctx.node.op == "MaxPool" {
        let options = MaxPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding_pairs(pads)
            .with_dilation(dilation)
            .with_ceil_mode(ceil_mode);
        max_pool2d(x.to_rank::<4>(), options)
    } else {
        if dilation != [1, 1] {
            return Err(ctx.err("dilated average pooling is not supported"));
        }
        let options = AvgPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding_pairs(pads)
            .with_count_include_pad(ctx.attr_int("count_include_pad", 0)? != 0)
            .with_ceil_mode(ceil_mode);
        avg_pool2d(x.to_rank::<4>(), options)
    };
    Ok(Value::Float(FloatValue::from_tensor(y)))
}

/// GlobalAveragePool / GlobalMaxPool over all spatial axes, keeping them as 1s.
pub fn global_pool(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    if x.rank() < 3 {
        return Err(ctx.err(format!("input {:?} has no spatial axes", x.shape)));
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let s: usize = x.shape[2..].iter().product();
    let t: Tensor<3> = x.tensor.reshape([n, c, s]);
    let y = if ctx.node.op == "GlobalAveragePool" {
        t.mean_dim(2)
    } else {
        t.max_dim(2)
    };
    let mut shape = vec![1; x.shape.len()];
    shape[0] = n;
    shape[1] = c;
    Ok(Value::Float(FloatValue::from_tensor(y).reshaped(shape)))
}

/// ReduceMean / ReduceSum / ReduceMax over `axes` (attribute, or input from opset 18; ReduceSum
/// from opset 13), all axes when none are given.
pub fn reduce(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    let r = x.rank();
    let axes_from_input = (ctx.node.op == "ReduceSum" && ctx.opset >= 13) || ctx.opset >= 18;
    let axes = if axes_from_input {
        if ctx.has_input(1) {
            Some(ctx.int(1)?.data)
        } else {
            None
        }
    } else {
        ctx.attr_ints("axes")?
    };
    let axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a.iter().map(|&v| ctx.axis(v, r)).collect::<Result<_>>()?,
        _ if ctx.attr_int("noop_with_empty_axes", 0)? != 0 => return Ok(Value::Float(x)),
        _ => (0..r).collect(),
    };
    let keepdims = ctx.attr_int("keepdims", 1)? != 0;
    let offset = MAX_RANK - r;
    let mut t = x.tensor;
    for &a in &axes {
        t = match ctx.node.op.as_str() {
            "ReduceMean" => t.mean_dim(a + offset),
            "ReduceSum" => t.sum_dim(a + offset),
            _ => t.max_dim(a + offset),
        };
    }
    let shape: Vec<usize> = (0..r)
        .filter_map(|a| match (axes.contains(&a), keepdims) {
            (false, _) => Some(x.shape[a]),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    Ok(Value::Float(FloatValue {
        tensor: t.reshape(padded(&shape)),
        shape,
    }))
}

/// Gemm: `alpha * A' B' + beta * C` on matrices.
pub fn gemm(ctx: &OpContext) -> Result<Value> {
    let a = ctx.float_rank(0, 2)?;
    let b = ctx.float_rank(1, 2)?;
    let mut a2: Tensor<2> = a.to_rank();
    let mut b2: Tensor<2> = b.to_rank();
    if ctx.attr_int("transA", 0)? != 0 {
        a2 = a2.transpose();
    }
    if ctx.attr_int("transB", 0)? != 0 {
        b2 = b2.transpose();
    }
    let ([m, k], [k2, n]) = (a2.dims(), b2.dims());
    if k != k2 {
        return Err(ctx.err(format!(
            "A {:?} and B {:?} do not multiply",
            a.shape, b.shape
        )));
    }
    let alpha = ctx.attr_float("alpha", 1.0)? as f64;
    let beta = ctx.attr_float("beta", 1.0)? as f64;
    let mut y = a2.matmul(b2);
    if alpha != 1.0 {
        y = y.mul_scalar(alpha);
    }
    let mut y = FloatValue::from_tensor(y);
    if ctx.has_input(2) {
        let c = ctx.float(2)?;
        if host::broadcast_shapes(&[m, n], &c.shape).as_deref() != Some(&[m, n]) {
            return Err(ctx.err(format!("C {:?} does not broadcast to [{m}, {n}]", c.shape)));
        }
        y.tensor = y.tensor.add(c.tensor.mul_scalar(beta));
    }
    Ok(Value::Float(y))
}

/// MatMul with numpy semantics (1-D operands, broadcast batch axes).
pub fn matmul(ctx: &OpContext) -> Result<Value> {
    let a = ctx.float(0)?;
    let b = ctx.float(1)?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err(ctx.err("MatMul of a scalar"));
    }
    let a_shape = if a.rank() == 1 {
        vec![1, a.shape[0]]
    } else {
        a.shape.clone()
    };
    let b_shape = if b.rank() == 1 {
        vec![b.shape[0], 1]
    } else {
        b.shape.clone()
    };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (k2, n) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    let batch =
        host::broadcast_shapes(&a_shape[..a_shape.len() - 2], &b_shape[..b_shape.len() - 2]);
    let batch = match batch {
        Some(batch) if k == k2 && batch.len() + 2 <= MAX_RANK => batch,
        _ => {
            return Err(ctx.err(format!(
                "shapes {:?} and {:?} do not multiply",
                a.shape, b.shape
            )));
        }
    };
    let full = |rows: usize, cols: usize| {
        let mut s = batch.clone();
        s.extend([rows, cols]);
        padded(&s)
    };
    let (a_rank, b_rank) = (a.rank(), b.rank());
    let a6 = a.tensor.reshape(padded(&a_shape)).expand(full(m, k));
    let b6 = b.tensor.reshape(padded(&b_shape)).expand(full(k, n));
    let y = a6.matmul(b6);
    let mut shape = batch;
    if a_rank > 1 {
        shape.push(m);
    }
    if b_rank > 1 {
        shape.push(n);
    }
    Ok(Value::Float(FloatValue {
        tensor: y.reshape(padded(&shape)),
        shape,
    }))
}

/// Softmax: along one axis from opset 13; before, over the flattened axes from `axis` on.
pub fn softmax(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float(0)?;
    let r = x.rank().max(1);
    if ctx.opset >= 13 {
        let axis = ctx.axis(ctx.attr_int("axis", -1)?, r)?;
        let tensor = activation::softmax(x.tensor, axis + MAX_RANK - r);
        return Ok(Value::Float(FloatValue {
            tensor,
            shape: x.shape,
        }));
    }
    let axis = ctx.axis(ctx.attr_int("axis", 1)?, r)?;
    let rows: usize = x.shape[..axis].iter().product();
    let cols: usize = x.shape[axis..].iter().product();
    let t: Tensor<2> = x.tensor.reshape([rows, cols]);
    let tensor = activation::softmax(t, 1).reshape(padded(&x.shape));
    Ok(Value::Float(FloatValue {
        tensor,
        shape: x.shape,
    }))
}
