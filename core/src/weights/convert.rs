//! PyTorch checkpoint tensors into burn's layout and float type, in one pass per tensor.
//!
//! burn-store's stock chain (`PyTorchToBurnAdapter` then `FloatCastAdapter`) copies a linear
//! weight twice (a byte-wise transpose, then an element-wise cast through an iterator); the
//! UNet and CLIP ViT-H are almost all linear weights stored in fp16, so loading spent most of
//! its time allocating, faulting in and copying buffers. [`TorchLayoutAdapter`] casts and
//! transposes into the final buffer directly, with the same renames as burn's adapter, and loads
//! 1×1 convolution weights `[out, in, 1, 1]` into linear layers (the LDM VAE's attention
//! projections are convolutions).

use burn::store::bridge::map_data;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleAdapter, ModuleContext, PyTorchToBurnAdapter};
use burn::tensor::{DType, TensorData};
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// PyTorch → burn (linear weights `[out, in]` → `[in, out]`, 1×1 convolution weights loaded
/// into linear layers squeezed first, norm `weight`/`bias` → `gamma`/`beta`), every float
/// tensor cast to `dtype`.
#[derive(Debug, Clone, Copy)]
pub struct TorchLayoutAdapter {
    pub dtype: DType,
}

impl ModuleAdapter for TorchLayoutAdapter {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        let dims = tensor.shape.to_vec();
        let is_linear_weight = ctx.module_type() == Some("Struct:Linear")
            && tensor.name.rsplit('.').next() == Some("weight");
        let matrix = dims.len() == 2 || (dims.len() == 4 && dims[2] == 1 && dims[3] == 1);
        let target = self.dtype;
        if is_linear_weight && matrix && tensor.dtype.is_float() {
            let (rows, cols) = (dims[0], dims[1]);
            let name = tensor.name.clone();
            return map_data(tensor, name, target, [cols, rows].into(), move |data| {
                transpose_cast(data, rows, cols, target)
            });
        }
        let tensor = PyTorchToBurnAdapter.adapt(tensor, ctx);
        if !tensor.dtype.is_float() || tensor.dtype == target {
            return tensor;
        }
        let (name, shape) = (tensor.name.clone(), tensor.shape.clone());
        map_data(tensor, name, target, shape, move |data| cast(data, target))
    }

    fn get_alternative_param_name(&self, param_name: &str, module_type: &str) -> Option<String> {
        PyTorchToBurnAdapter.get_alternative_param_name(param_name, module_type)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// A float tensor as f32 values.
fn to_f32(data: &TensorData) -> Option<Vec<f32>> {
    f32_from_le_bytes(data.dtype(), data.as_bytes())
}

/// Little-endian f32, f16 or bf16 values as f32 (`None` for other types); aligned bytes take
/// the vectorised conversions.
pub fn f32_from_le_bytes(dtype: DType, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        DType::F32 => convert::<f32, 4>(bytes, <[f32]>::to_vec, f32::from_le_bytes),
        DType::F16 => convert::<f16, 2>(
            bytes,
            |v| v.to_f32_vec(),
            |b| f16::from_le_bytes(b).to_f32(),
        ),
        DType::BF16 => convert::<bf16, 2>(
            bytes,
            |v| v.to_f32_vec(),
            |b| bf16::from_le_bytes(b).to_f32(),
        ),
        _ => return None,
    })
}

/// `bytes` as `T` values converted to f32: through `slice` when aligned, else element-wise.
fn convert<T: bytemuck::Pod, const N: usize>(
    bytes: &[u8],
    slice: impl Fn(&[T]) -> Vec<f32>,
    one: impl Fn([u8; N]) -> f32,
) -> Vec<f32> {
    match bytemuck::try_cast_slice::<u8, T>(bytes) {
        Ok(values) => slice(values),
        Err(_) => bytes
            .chunks_exact(N)
            .map(|b| one(b.try_into().unwrap_or([0; N])))
            .collect(),
    }
}

/// `data` as `target`: f32 targets take the fast path, anything else burn's conversion.
fn cast(data: TensorData, target: DType) -> TensorData {
    if data.dtype() == target {
        return data;
    }
    if target == DType::F32
        && let Some(values) = to_f32(&data)
    {
        return TensorData::new(values, data.shape().clone());
    }
    data.convert_dtype(target)
}

/// Side of the square tiles the transpose walks, so that reads and writes both stay in cache.
const TILE: usize = 32;

/// The `[rows, cols]` matrix in `data` (any trailing 1×1 dims) transposed to `[cols, rows]`
/// and cast to `target`.
fn transpose_cast(data: TensorData, rows: usize, cols: usize, target: DType) -> TensorData {
    let Some(src) = to_f32(&data) else {
        // Not a float type we convert ourselves: burn's conversion, then a plain transpose.
        let as_target = data.convert_dtype(DType::F32);
        return transpose_cast(as_target, rows, cols, target);
    };
    drop(data);
    let mut dst = vec![0f32; src.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let row = &src[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    dst[c * rows + r] = row[c];
                }
            }
        }
    }
    cast(TensorData::new(dst, [cols, rows]), target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_and_casts_half_matrices() {
        let (rows, cols) = (37, 70);
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32 * 0.25).collect();
        for dtype in [DType::F16, DType::BF16, DType::F32] {
            let data = TensorData::new(values.clone(), [rows, cols, 1, 1]).convert_dtype(dtype);
            let out = transpose_cast(data, rows, cols, DType::F32);
            assert_eq!(out.shape().to_vec(), vec![cols, rows]);
            let out: Vec<f32> = out.try_into_vec().expect("f32");
            for r in 0..rows {
                for c in 0..cols {
                    let want = values[r * cols + c];
                    let tol = if dtype == DType::F32 {
                        0.0
                    } else {
                        want.abs() / 100.0
                    };
                    assert!((out[c * rows + r] - want).abs() <= tol, "{dtype:?} {r} {c}");
                }
            }
        }
    }

    #[test]
    fn casts_keep_values_and_other_targets_use_burn() {
        let data = TensorData::new(vec![1.5f32, -2.0, 3.25], [3]).convert_dtype(DType::F16);
        let out = cast(data.clone(), DType::F32);
        assert_eq!(
            out.try_into_vec::<f32>().expect("f32"),
            vec![1.5, -2.0, 3.25]
        );
        let same = cast(data.clone(), DType::F16);
        assert_eq!(same.as_bytes(), data.as_bytes());
        let bf = cast(data, DType::BF16);
        assert_eq!(bf.dtype(), DType::BF16);
    }
}
