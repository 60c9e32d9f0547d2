//! GroupNorm (+ SiLU) for the CPU backend, computed in the tensor's own buffer.
//!
//! burn's GroupNorm is about ten whole-tensor operations (mean, subtract, square, mean, add,
//! square root, divide, reshape, scale, shift), each a pass over memory, and on burn-flex SiLU
//! is a serial scalar loop around the C library's `expf`: in the 512² VAE decoder that was a
//! large share of the time on one core. Here the statistics take two reading passes and the
//! normalisation, affine and SiLU one read-modify-write pass, each (image, group) on its own
//! thread. The tensor's data comes out of and goes back into the backend without a copy when the
//! tensor is contiguous and not shared (burn-flex's `into_data`/`from_data`).

use burn::nn::GroupNorm;
use burn::tensor::{DType, Tensor};

use super::host_math::silu;

/// Below this many elements one thread does the work (spawning costs more than it saves).
const PARALLEL_MIN: usize = 1 << 16;

/// Whether this path takes `x`: non-empty f32 tensors off the CubeCL devices (which have their
/// own kernel) whose channels divide into the norm's groups. Half precision stays on burn's ops
/// (they widen the statistics themselves). Autodiff tensors take burn's ops, which keep the
/// graph (this path builds its result from host data).
pub(super) fn applies(norm: &GroupNorm, x: &Tensor<4>) -> bool {
    if x.is_autodiff() {
        return false;
    }
    #[cfg(feature = "cube")]
    if super::on_cube(x) {
        return false;
    }
    x.dtype() == DType::F32
        && x.shape().num_elements() > 0
        && norm.num_groups > 0
        && x.dims()[1] == norm.num_channels
        && norm.num_channels.is_multiple_of(norm.num_groups)
}

/// # Shapes
/// - `x`: `[batch, channels, height, width]` → the same
pub(super) fn forward(norm: &GroupNorm, x: Tensor<4>, then_silu: bool) -> Tensor<4> {
    let device = x.device();
    let [batch, channels, height, width] = x.dims();
    let groups = norm.num_groups;
    let affine = |p: &Option<burn::module::Param<Tensor<1>>>| {
        p.as_ref().and_then(|p| {
            p.val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .ok()
        })
    };
    let (gamma, beta) = (affine(&norm.gamma), affine(&norm.beta));
    let mut data = x.into_data();
    let Ok(values) = data.as_mut_slice::<f32>() else {
        return super::group_norm_reference(norm, Tensor::from_data(data, &device), then_silu);
    };
    let group = Group {
        len: channels / groups * height * width,
        plane: height * width,
        channels_per_group: channels / groups,
        groups,
        eps: norm.epsilon as f32,
        gamma: gamma.as_deref(),
        beta: beta.as_deref(),
        then_silu,
    };
    let items = batch * groups;
    let threads = if values.len() < PARALLEL_MIN {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    .min(items)
    .max(1);
    let per_thread = items.div_ceil(threads);
    if threads == 1 {
        run(&group, values, 0);
    } else {
        std::thread::scope(|scope| {
            for (i, chunk) in values.chunks_mut(per_thread * group.len).enumerate() {
                let group = &group;
                scope.spawn(move || run(group, chunk, i * per_thread));
            }
        });
    }
    Tensor::from_data(data, &device)
}

/// What every (image, group) needs.
struct Group<'a> {
    len: usize,
    plane: usize,
    channels_per_group: usize,
    groups: usize,
    eps: f32,
    gamma: Option<&'a [f32]>,
    beta: Option<&'a [f32]>,
    then_silu: bool,
}

/// Normalises consecutive (image, group) blocks, the first being number `first`.
fn run(g: &Group, values: &mut [f32], first: usize) {
    for (i, block) in values.chunks_mut(g.len).enumerate() {
        let group = (first + i) % g.groups;
        let n = block.len() as f64;
        let mean = (sum(block, |v| v) / n) as f32;
        let var = (sum(block, |v| (v - mean) * (v - mean)) / n) as f32;
        let rstd = 1.0 / (var + g.eps).sqrt();
        for (c, plane) in block.chunks_mut(g.plane).enumerate() {
            let channel = group * g.channels_per_group + c;
            // (v − mean) first, as burn does: no cancellation when the mean is large.
            let scale = g.gamma.map_or(1.0, |w| w[channel]) * rstd;
            let shift = g.beta.map_or(0.0, |b| b[channel]);
            if g.then_silu {
                plane
                    .iter_mut()
                    .for_each(|v| *v = silu((*v - mean) * scale + shift));
            } else {
                plane
                    .iter_mut()
                    .for_each(|v| *v = (*v - mean) * scale + shift);
            }
        }
    }
}

/// Σ f(v) over `values`: eight f32 lanes (vectorised) per run of 4096 values, the runs added
/// in f64, so a million values lose no more precision than a few thousand.
fn sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    values
        .chunks(4096)
        .map(|run| {
            let mut lanes = [0f32; 8];
            let mut eights = run.chunks_exact(8);
            for eight in &mut eights {
                for (lane, &v) in lanes.iter_mut().zip(eight) {
                    *lane += f(v);
                }
            }
            let tail: f32 = eights.remainder().iter().map(|&v| f(v)).sum();
            lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64
        })
        .sum()
}
