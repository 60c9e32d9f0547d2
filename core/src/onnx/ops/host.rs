//! Shape arithmetic and integer tensors on the host.

use super::super::value::IntValue;

/// Numpy broadcasting of two shapes, `None` when they do not broadcast.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Row-major strides.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Reads element `index` (of the broadcast `out` shape) from a tensor of shape `shape`.
fn broadcast_offset(index: usize, out: &[usize], shape: &[usize]) -> usize {
    let out_strides = strides(out);
    let in_strides = strides(shape);
    let offset_rank = out.len() - shape.len();
    let mut offset = 0;
    for (axis, (&stride, &dim)) in out_strides.iter().zip(out).enumerate() {
        let coord = (index / stride) % dim.max(1);
        if axis >= offset_rank {
            let a = axis - offset_rank;
            if shape[a] != 1 {
                offset += coord * in_strides[a];
            }
        }
    }
    offset
}

/// An element-wise binary op on host integers with broadcasting.
pub fn binary(a: &IntValue, b: &IntValue, out: &[usize], f: impl Fn(i64, i64) -> i64) -> IntValue {
    let n: usize = out.iter().product();
    let data = (0..n)
        .map(|i| {
            f(
                a.data[broadcast_offset(i, out, &a.shape)],
                b.data[broadcast_offset(i, out, &b.shape)],
            )
        })
        .collect();
    IntValue::new(out.to_vec(), data)
}

/// Takes `indices` along `axis` (the output replaces that axis by `indices.len()` entries).
pub fn select(v: &IntValue, axis: usize, indices: &[usize]) -> IntValue {
    let outer: usize = v.shape[..axis].iter().product();
    let dim = v.shape[axis];
    let inner: usize = v.shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * indices.len() * inner);
    for o in 0..outer {
        for &i in indices {
            let start = (o * dim + i) * inner;
            data.extend_from_slice(&v.data[start..start + inner]);
        }
    }
    let mut shape = v.shape.clone();
    shape[axis] = indices.len();
    IntValue::new(shape, data)
}

/// Permutes axes.
pub fn transpose(v: &IntValue, perm: &[usize]) -> IntValue {
    let shape: Vec<usize> = perm.iter().map(|&p| v.shape[p]).collect();
    let in_strides = strides(&v.shape);
    let out_strides = strides(&shape);
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| {
            let offset: usize = (0..shape.len())
                .map(|a| ((i / out_strides[a]) % shape[a]) * in_strides[perm[a]])
                .sum();
            v.data[offset]
        })
        .collect();
    IntValue::new(shape, data)
}

/// Concatenates along `axis`; the shapes agree elsewhere (checked by the caller).
pub fn concat(values: &[IntValue], axis: usize) -> IntValue {
    let outer: usize = values[0].shape[..axis].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for v in values {
            let chunk: usize = v.shape[axis..].iter().product();
            data.extend_from_slice(&v.data[o * chunk..(o + 1) * chunk]);
        }
    }
    let mut shape = values[0].shape.clone();
    shape[axis] = values.iter().map(|v| v.shape[axis]).sum();
    IntValue::new(shape, data)
}
