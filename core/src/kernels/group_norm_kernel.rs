//! GroupNorm (+ SiLU) in one CubeCL kernel: one cube per (image, group) sums the group in f32
//! (mean, then the centred sum of squares, as `torch.nn.GroupNorm`), then writes
//! `(x - mean) / sqrt(var + eps) * gamma + beta`, SiLU'd if asked. burn's GroupNorm is about ten
//! kernels (casts, means, subtractions, a square, a second mean, the affine), each a full pass
//! over the activation; this reads it three times and writes it once.

use burn::backend::{Backend, backend_extension, tensor::FloatTensor};
use burn::nn::GroupNorm;
// cubecl's prelude has its own `Tensor` (the kernel's view of a buffer).
use burn::tensor::Tensor as BurnTensor;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// Units per cube: the sums are reduced in a shared array of this size.
const UNITS: usize = 256;

/// The kernel behind `burn::backend::Dispatch`: only CubeCL tensors reach it.
#[backend_extension(Cube)]
pub trait GroupNormBackend: Backend {
    /// # Shapes
    /// - `x`: `[batch, channels, height, width]`, `gamma`/`beta`: `[channels]` → as `x`
    fn fused_group_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        groups: usize,
        epsilon: f64,
        then_silu: bool,
    ) -> FloatTensor<Self>;
}

/// Whether the kernel takes this call: a CubeCL device and an affine norm whose channels divide
/// into its groups.
pub fn applies(norm: &GroupNorm, x: &BurnTensor<4>) -> bool {
    super::on_cube(x)
        && norm.affine
        && norm.gamma.is_some()
        && norm.beta.is_some()
        && norm.num_groups > 0
        && x.dims()[1] == norm.num_channels
        && norm.num_channels.is_multiple_of(norm.num_groups)
}

/// # Shapes
/// - `x`: `[batch, channels, height, width]` → the same
pub fn forward(norm: &GroupNorm, x: BurnTensor<4>, then_silu: bool) -> BurnTensor<4> {
    let dtype = x.dtype();
    // `applies` checked both are present.
    let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
        unreachable!("GroupNorm without affine parameters");
    };
    let out = <burn::backend::Dispatch as GroupNormBackend>::fused_group_norm(
        x.into_dispatch(),
        gamma.val().cast(dtype).into_dispatch(),
        beta.val().cast(dtype).into_dispatch(),
        norm.num_groups,
        norm.epsilon,
        then_silu,
    );
    BurnTensor::from_dispatch(out)
}

impl GroupNormBackend for CubeBackend {
    fn fused_group_norm(
        x: CubeTensor,
        gamma: CubeTensor,
        beta: CubeTensor,
        groups: usize,
        epsilon: f64,
        then_silu: bool,
    ) -> CubeTensor {
        let x = into_contiguous(x);
        let (gamma, beta) = (into_contiguous(gamma), into_contiguous(beta));
        let shape = x.meta.shape().clone();
        let dims = shape.dims::<4>();
        let [batch, channels, height, width] = dims;
        let output = empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
        let cubes = u32::try_from(batch * groups).expect("batch × groups fits a u32");
        let dtype = burn::backend::cubecl::dtype_to_storage_type(x.dtype);
        group_norm_kernel::launch(
            &x.client.clone(),
            CubeCount::new_1d(cubes),
            CubeDim::new_1d(UNITS as u32),
            x.into_tensor_arg(),
            gamma.into_tensor_arg(),
            beta.into_tensor_arg(),
            output.clone().into_tensor_arg(),
            channels / groups,
            height * width,
            groups,
            epsilon as f32,
            then_silu,
            dtype,
        );
        output
    }
}

/// One cube normalises one group of one image: `CUBE_POS` = image × groups + group; unit `u`
/// takes the group's elements `u`, `u + UNITS`, `u + 2 UNITS`, …
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn group_norm_kernel<F: Float>(
    input: &Tensor<F>,
    gamma: &Tensor<F>,
    beta: &Tensor<F>,
    output: &mut Tensor<F>,
    channels_per_group: usize,
    spatial: usize,
    groups: usize,
    epsilon: f32,
    #[comptime] then_silu: bool,
    #[define(F)] _dtype: ElemType,
) {
    let len = channels_per_group * spatial;
    let rounds = len.div_ceil(UNITS);
    let group = CUBE_POS;
    let base = group * len;
    let first_channel = (group % groups) * channels_per_group;
    let unit = UNIT_POS as usize;
    let mut shared = Shared::<[f32]>::new_slice(UNITS);

    let mut sum = f32::new(0.0);
    for r in 0..rounds {
        let i = r * UNITS + unit;
        if i < len {
            sum += f32::cast_from(input[base + i]);
        }
    }
    let mean = block_sum(&mut shared, sum, unit) / f32::cast_from(len);

    // The centred second pass, as PyTorch: no cancellation when |mean| ≫ std.
    let mut squares = f32::new(0.0);
    for r in 0..rounds {
        let i = r * UNITS + unit;
        if i < len {
            let d = f32::cast_from(input[base + i]) - mean;
            squares += d * d;
        }
    }
    let variance = block_sum(&mut shared, squares, unit) / f32::cast_from(len);
    let inv_std = f32::new(1.0) / f32::sqrt(variance + epsilon);

    for r in 0..rounds {
        let i = r * UNITS + unit;
        if i < len {
            let c = first_channel + i / spatial;
            let scale = f32::cast_from(gamma[c]) * inv_std;
            let mut y = (f32::cast_from(input[base + i]) - mean) * scale + f32::cast_from(beta[c]);
            if then_silu {
                y /= f32::new(1.0) + f32::exp(-y);
            }
            output[base + i] = F::cast_from(y);
        }
    }
}

/// The sum of every unit's `value` (a tree over the shared array), returned to all units.
#[cube]
fn block_sum(shared: &mut Shared<[f32]>, value: f32, unit: usize) -> f32 {
    shared[unit] = value;
    sync_cube();
    let mut half = CUBE_DIM as usize / 2;
    while half > 0 {
        if unit < half {
            let other = shared[unit + half];
            shared[unit] += other;
        }
        sync_cube();
        half /= 2;
    }
    let total = shared[0];
    // Everyone has read the total before the array is reused.
    sync_cube();
    total
}
