//! Fused kernels where burn's stock ops are slow: CubeCL kernels for the GPU backends (CUDA,
//! wgpu) and host code for the CPU backend.
//!
//! Each operation has a plain tensor-op reference (the fallback path, and the kernels' test
//! oracle). A CubeCL kernel runs only when the tensors live on a CubeCL device and the crate is
//! built with the `cube` feature (the host turns it on with its GPU backends); its source
//! compiles to WGSL and to CUDA alike, so one kernel serves both, and is tested on wgpu. A host
//! kernel runs on f32 tensors off the CubeCL devices, where the data can be read back without
//! waiting (not in the browser).

#[cfg(feature = "cube")]
mod attention_kernel;
#[cfg(not(target_family = "wasm"))]
mod conv_host;
#[cfg(not(target_family = "wasm"))]
mod group_norm_host;
#[cfg(feature = "cube")]
mod group_norm_kernel;
#[cfg(not(target_family = "wasm"))]
mod host_math;

use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::silu;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;

/// Whether `x` lives on a CubeCL device (CUDA, wgpu).
#[cfg(feature = "cube")]
fn on_cube(x: &Tensor<4>) -> bool {
    matches!(
        x.device().as_dispatch(),
        burn::backend::DispatchDevice::Cube(_)
    )
}

/// Score matrices from this many elements up (64 MiB in f32) take the flash routine on CubeCL
/// devices: below it, burn's fallback (two matrix products and a softmax) needs little memory.
/// Which of the two is faster on a real GPU is still to be measured (bench/RESULTS.md).
pub const FLASH_MIN_SCORES: usize = 1 << 24;

/// `GroupNorm` followed, when `then_silu`, by SiLU: one kernel on CubeCL devices (statistics in
/// f32 whatever the tensor's float type, as PyTorch accumulates), three passes over the buffer
/// on the CPU for f32 tensors, burn's ops elsewhere.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` → the same
pub fn group_norm(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    #[cfg(feature = "cube")]
    if group_norm_kernel::applies(norm, &x) {
        return group_norm_kernel::forward(norm, x, then_silu);
    }
    #[cfg(not(target_family = "wasm"))]
    if group_norm_host::applies(norm, &x) {
        return group_norm_host::forward(norm, x, then_silu);
    }
    group_norm_reference(norm, x, then_silu)
}

/// The stock path: burn's `GroupNorm`, then SiLU.
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]` → the same
pub fn group_norm_reference(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    let y = norm.forward(x);
    if then_silu { silu(y) } else { y }
}

/// A 2-D convolution: large 3×3 ones (stride 1, padding 1, 2²¹+ input values per image) on the
/// CPU for f32 tensors as column blocks and matrix products, burn's convolution elsewhere.
///
/// # Shapes
/// - `x`: `[batch, in, height, width]` → `[batch, out, height', width']`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(not(target_family = "wasm"))]
    if conv_host::applies(conv, &x) {
        return conv_host::forward(conv, x);
    }
    conv.forward(x)
}

/// Scaled dot-product attention, scale `1/sqrt(d)`: the flash routine on CubeCL devices when
/// the score matrix would be large ([`FLASH_MIN_SCORES`]), burn's attention elsewhere.
///
/// # Shapes
/// - `q`: `[b, heads, n, d]`, `k`/`v`: `[b, heads, m, d]` → `[b, heads, n, d]`
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "cube")]
    {
        let [b, heads, n, _] = q.dims();
        let m = k.dims()[2];
        if b * heads * n * m >= FLASH_MIN_SCORES && on_cube(&q) {
            return attention_kernel::forward(q, k, v);
        }
    }
    attention_reference(q, k, v)
}

/// The flash routine whatever the size (for its tests), or `None` off CubeCL devices.
///
/// # Shapes
/// - `q`: `[b, heads, n, d]`, `k`/`v`: `[b, heads, m, d]` → `[b, heads, n, d]`
pub fn flash_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Option<Tensor<4>> {
    #[cfg(feature = "cube")]
    if on_cube(&q) {
        return Some(attention_kernel::forward(q, k, v));
    }
    let _ = (q, k, v);
    None
}

/// burn's attention (its unfused fallback on every backend built without `autotune`).
///
/// # Shapes
/// - `q`: `[b, heads, n, d]`, `k`/`v`: `[b, heads, m, d]` → `[b, heads, n, d]`
pub fn attention_reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>) -> Tensor<4> {
    burn_attention(q, k, v, None, None, AttentionModuleOptions::default())
}
