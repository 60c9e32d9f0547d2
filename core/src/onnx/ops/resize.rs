//! Resize (opset 10+) and Upsample on the two spatial axes of an NCHW tensor.
//!
//! Source coordinates are computed on the host exactly as onnxruntime does for each
//! `coordinate_transformation_mode`, then applied separably: nearest as an index select,
//! linear as a blend of two selects. This covers every mode with the same two kernels.

use burn::tensor::{Tensor, TensorData};

use super::super::value::{FloatValue, Value};
use super::{OpContext, index_tensor};
use crate::Result;

#[derive(Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample and Resize-10: floor when enlarging, ceil when shrinking.
    Simple,
}

/// Source coordinate of output index `x` along an axis of `len_in` → `len_out` with `scale`.
fn source_coordinate(mode: &str, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
    let x = x as f32;
    match mode {
        "asymmetric" => x / scale,
        "align_corners" if len_out == 1 => 0.0,
        "align_corners" => x * (len_in as f32 - 1.0) / (len_out as f32 - 1.0),
        "pytorch_half_pixel" if len_out == 1 => 0.0,
        "tf_half_pixel_for_nn" => (x + 0.5) / scale,
        _ => (x + 0.5) / scale - 0.5, // half_pixel, pytorch_half_pixel
    }
}

fn nearest_index(mode: Nearest, c: f32, scale: f32, len_in: usize) -> usize {
    let i = match mode {
        Nearest::RoundPreferFloor if c.fract() == 0.5 => c.floor(),
        Nearest::RoundPreferFloor | Nearest::RoundPreferCeil => c.round(),
        Nearest::Floor => c.floor(),
        Nearest::Ceil => c.ceil(),
        Nearest::Simple if scale < 1.0 => c.ceil(),
        Nearest::Simple => c.floor(),
    };
    (i.max(0.0) as usize).min(len_in - 1)
}

/// Resamples axis `axis` (2 or 3 of a rank-4 tensor) to `len_out`.
fn resample_axis(
    t: Tensor<4>,
    axis: usize,
    len_out: usize,
    scale: f32,
    linear: bool,
    coord_mode: &str,
    nearest: Nearest,
) -> Tensor<4> {
    let dims = t.dims();
    let len_in = dims[axis];
    if len_in == len_out && scale == 1.0 {
        return t;
    }
    let device = t.device();
    let coords: Vec<f32> = (0..len_out)
        .map(|x| source_coordinate(coord_mode, x, scale, len_in, len_out))
        .collect();
    if !linear {
        let idx: Vec<usize> = coords
            .iter()
            .map(|&c| nearest_index(nearest, c, scale, len_in))
            .collect();
        return t.select(axis, index_tensor(&idx, &device));
    }
    let mut i0 = Vec::with_capacity(len_out);
    let mut i1 = Vec::with_capacity(len_out);
    let mut w = Vec::with_capacity(len_out);
    for c in coords {
        let c = c.clamp(0.0, (len_in - 1) as f32);
        let lo = c.floor() as usize;
        i0.push(lo);
        i1.push((lo + 1).min(len_in - 1));
        w.push(c - lo as f32);
    }
    let mut wshape = [1; 4];
    wshape[axis] = len_out;
    let weight: Tensor<4> = Tensor::from_data(TensorData::new(w, wshape), &device);
    let a = t.clone().select(axis, index_tensor(&i0, &device));
    let b = t.select(axis, index_tensor(&i1, &device));
    a.clone().add(b.sub(a).mul(weight))
}

pub fn resize(ctx: &OpContext) -> Result<Value> {
    let x = ctx.float_rank(0, 4)?;
    let upsample = ctx.node.op == "Upsample";
    let legacy = upsample || ctx.opset < 11;
    let mode = ctx.attr_string("mode", "nearest")?;
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => return Err(ctx.err(format!("mode `{other}` is not supported"))),
    };
    let coord_mode = if legacy {
        "asymmetric".to_string()
    } else {
        ctx.attr_string("coordinate_transformation_mode", "half_pixel")?
    };
    if !matches!(
        coord_mode.as_str(),
        "half_pixel"
            | "pytorch_half_pixel"
            | "align_corners"
            | "asymmetric"
            | "tf_half_pixel_for_nn"
    ) {
        return Err(ctx.err(format!(
            "coordinate_transformation_mode `{coord_mode}` is not supported"
        )));
    }
    let nearest = if legacy {
        Nearest::Simple
    } else {
        match ctx
            .attr_string("nearest_mode", "round_prefer_floor")?
            .as_str()
        {
            "round_prefer_floor" => Nearest::RoundPreferFloor,
            "round_prefer_ceil" => Nearest::RoundPreferCeil,
            "floor" => Nearest::Floor,
            "ceil" => Nearest::Ceil,
            other => return Err(ctx.err(format!("nearest_mode `{other}` is not supported"))),
        }
    };

    // Scales come from an attribute (Upsample-7), input 1 (Upsample-9, Resize-10) or input 2;
    // Resize-11+ may give output sizes (input 3) instead.
    let scales_input = if legacy { 1 } else { 2 };
    let mut scales: Option<Vec<f32>> = if upsample && ctx.opset < 9 {
        ctx.attr_floats("scales")?
    } else if ctx.has_input(scales_input) {
        Some(ctx.host_floats(scales_input)?).filter(|s| !s.is_empty())
    } else {
        None
    };
    let sizes: Option<Vec<usize>> = if !legacy && ctx.has_input(3) {
        let s = ctx.int(3)?.data;
        Some(s.iter().map(|&v| v.max(0) as usize).collect()).filter(|s: &Vec<usize>| !s.is_empty())
    } else {
        None
    };
    let out: Vec<usize> = match (&scales, &sizes) {
        (_, Some(s)) if s.len() == 4 => {
            scales = Some((0..4).map(|a| s[a] as f32 / x.shape[a] as f32).collect());
            s.clone()
        }
        (Some(s), _) if s.len() == 4 => (0..4)
            .map(|a| (x.shape[a] as f32 * s[a]).floor() as usize)
            .collect(),
        _ => return Err(ctx.err("needs 4 scales or 4 sizes")),
    };
    let scales = scales.unwrap_or_default();
    if out[0] != x.shape[0] || out[1] != x.shape[1] {
        return Err(ctx.err("resizing the batch or channel axis is not supported"));
    }
    if out[2] == 0 || out[3] == 0 {
        return Err(ctx.err(format!("output size {out:?} is empty")));
    }
    let mut t = x.to_rank::<4>();
    for axis in [2, 3] {
        t = resample_axis(
            t,
            axis,
            out[axis],
            scales[axis],
            linear,
            &coord_mode,
            nearest,
        );
    }
    Ok(Value::Float(FloatValue::from_tensor(t)))
}
