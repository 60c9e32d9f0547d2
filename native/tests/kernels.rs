//! core's fused kernels (core/src/kernels) against their plain tensor-op references on the CPU
//! backend: the host kernels on the CPU backend itself, and, built with `--features wgpu`
//! (scripts/test.sh does), the CubeCL kernels on wgpu, which needs a Vulkan adapter: Mesa's
//! lavapipe where there is no GPU (scripts/install-tools.sh installs it).

use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use consistentid_core::kernels::{conv2d, group_norm, group_norm_reference};

/// A GroupNorm with random affine parameters (away from 1 and 0, so a swapped or ignored one
/// shows) on `device` in `dtype` (as the models keep them), from values drawn once.
fn norm(
    groups: usize,
    channels: usize,
    gamma: &[f32],
    beta: &[f32],
    device: &Device,
    dtype: DType,
) -> GroupNorm {
    let eps = 1e-5;
    let mut norm = GroupNormConfig::new(groups, channels)
        .with_epsilon(eps)
        .init(device);
    let param = |values: &[f32]| {
        Param::from_tensor(
            Tensor::<1>::from_data(TensorData::new(values.to_vec(), [channels]), device)
                .cast(dtype),
        )
    };
    norm.gamma = Some(param(gamma));
    norm.beta = Some(param(beta));
    norm
}

fn values(tensor: Tensor<4>) -> Vec<f32> {
    tensor
        .cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 values")
}

/// The largest difference relative to the largest magnitude of `want`.
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    worst / scale
}

/// `group_norm` on `device` (in `dtype`) against burn's GroupNorm on the CPU in f32, on inputs
/// of mean `mean` (an offset mean checks the centred variance; a spread of scales, the affine).
fn kernel_error(
    device: &Device,
    shape: [usize; 4],
    groups: usize,
    then_silu: bool,
    dtype: DType,
    mean: f64,
) -> f32 {
    let cpu = Device::flex();
    let channels = shape[1];
    let x = Tensor::<4>::random(shape, Distribution::Normal(mean, 1.5), &cpu);
    let gamma = Tensor::<1>::random([channels], Distribution::Uniform(0.5, 2.0), &cpu);
    let beta = Tensor::<1>::random([channels], Distribution::Uniform(-1.0, 1.0), &cpu);
    let (gamma, beta) = (
        gamma.into_data().try_to_vec::<f32>().unwrap(),
        beta.into_data().try_to_vec::<f32>().unwrap(),
    );
    let want = values(group_norm_reference(
        &norm(groups, channels, &gamma, &beta, &cpu, DType::F32),
        x.clone(),
        then_silu,
    ));

    let x_there = Tensor::<4>::from_data(x.into_data(), device).cast(dtype);
    let norm_there = norm(groups, channels, &gamma, &beta, device, dtype);
    relative_error(&values(group_norm(&norm_there, x_there, then_silu)), &want)
}

/// The host GroupNorm (+ SiLU) on the CPU backend: one group and many, fewer elements than the
/// threading threshold and several threads' worth, a mean large against the spread.
#[test]
fn host_group_norm_matches_the_reference() {
    let cpu = Device::flex();
    for (shape, groups, mean) in [
        ([2, 12, 5, 7], 3, 3.0),
        ([1, 64, 33, 31], 32, 3.0),
        ([2, 32, 32, 16], 1, 3.0),
        ([1, 128, 64, 64], 32, 3.0),
        ([1, 8, 16, 16], 4, 200.0),
    ] {
        for then_silu in [false, true] {
            let err = kernel_error(&cpu, shape, groups, then_silu, DType::F32, mean);
            // With a mean of 200 the reference's own f32 subtraction loses ~1e-5.
            let bound = if mean > 100.0 { 1e-4 } else { 1e-5 };
            assert!(
                err < bound,
                "{shape:?}, {groups} groups, mean {mean}, silu {then_silu}: relative error {err}"
            );
        }
    }
}

/// The host path works in the tensor's own buffer: a tensor that shares that buffer (a clone
/// kept for a residual connection) must not change.
#[test]
fn host_group_norm_leaves_a_shared_input_alone() {
    let cpu = Device::flex();
    let x = Tensor::<4>::random([1, 64, 32, 32], Distribution::Normal(1.0, 2.0), &cpu);
    let before = values(x.clone());
    let norm = GroupNormConfig::new(32, 64).init(&cpu);
    let y = values(group_norm(&norm, x.clone(), true));
    assert_eq!(values(x), before);
    assert_ne!(y, before);
}

/// Half precision is not the host path's: burn's ops (which widen the statistics) take it.
#[test]
fn group_norm_in_half_precision_on_the_cpu_stays_within_it() {
    let err = kernel_error(&Device::flex(), [2, 64, 9, 11], 32, true, DType::F16, 3.0);
    assert!(err < 2e-3 && err > 0.0, "relative error {err}");
}

/// The host 3×3 convolution on the CPU backend against burn's, at sizes it takes (2²¹ input
/// values per image and up): square and not, a batch of two, with and without a bias, few and
/// many channels, one-pixel-wide and one-row images (all taps at the border).
#[test]
fn host_convolution_matches_burns() {
    let cpu = Device::flex();
    for (shape, out, bias) in [
        ([1, 128, 128, 128], 64, true),
        ([2, 64, 200, 170], 24, true),
        ([1, 512, 64, 64], 32, false),
        ([1, 8, 512, 512], 3, true),
        ([1, 16, 131_072, 1], 5, true),
        ([1, 16, 1, 131_072], 5, false),
    ] {
        let conv = Conv2dConfig::new([shape[1], out], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(&cpu);
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 1.0), &cpu);
        let want = values(conv.forward(x.clone()));
        let got = conv2d(&conv, x);
        assert_eq!(got.dims(), [shape[0], out, shape[2], shape[3]]);
        let err = relative_error(&values(got), &want);
        assert!(
            err < 1e-5,
            "{shape:?} → {out}, bias {bias}: relative error {err}"
        );
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::*;
    use consistentid_core::kernels::{attention, attention_reference, flash_attention};

    fn wgpu() -> Device {
        Device::wgpu(Default::default())
    }

    #[test]
    fn fused_group_norm_matches_the_reference_in_f32() {
        // Fewer elements per group than units (140), several units' worth (2,046 and 16,384), and
        // one group per cube with a batch of two.
        for (shape, groups) in [
            ([2, 12, 5, 7], 3),
            ([1, 64, 33, 31], 32),
            ([2, 32, 32, 16], 1),
        ] {
            for then_silu in [false, true] {
                let err = kernel_error(&wgpu(), shape, groups, then_silu, DType::F32, 3.0);
                assert!(
                    err < 1e-5,
                    "{shape:?}, {groups} groups, silu {then_silu}: relative error {err}"
                );
            }
        }
    }

    /// In f16 the statistics are still f32: the error is the f16 rounding of input and output.
    #[test]
    fn fused_group_norm_in_f16_stays_within_half_precision() {
        for then_silu in [false, true] {
            let err = kernel_error(&wgpu(), [2, 64, 17, 19], 32, then_silu, DType::F16, 3.0);
            assert!(
                err < 2e-3 && err > 0.0,
                "silu {then_silu}: relative error {err}"
            );
        }
    }

    /// The flash routine on wgpu (in `dtype`) against burn's attention on the CPU in f32.
    fn attention_error(b: usize, heads: usize, n: usize, m: usize, d: usize, dtype: DType) -> f32 {
        let cpu = Device::flex();
        let gpu = wgpu();
        let q = Tensor::<4>::random([b, heads, n, d], Distribution::Normal(0.0, 1.0), &cpu);
        let k = Tensor::<4>::random([b, heads, m, d], Distribution::Normal(0.0, 1.0), &cpu);
        // Values away from zero, so the output's scale is set by the weights' sum.
        let v = Tensor::<4>::random([b, heads, m, d], Distribution::Normal(0.5, 1.0), &cpu);
        let want = values(attention_reference(q.clone(), k.clone(), v.clone()));
        let up = |t: Tensor<4>| Tensor::<4>::from_data(t.into_data(), &gpu).cast(dtype);
        let got = flash_attention(up(q), up(k), up(v)).expect("wgpu is a CubeCL device");
        relative_error(&values(got), &want)
    }

    /// The UNet's head dims (40, 80, 160), its cross-attention keys (77 text tokens, 81 with
    /// ConsistentID's 4 extra) and self-attention over token counts no tile divides. (lavapipe
    /// compiles the head-dim-160 kernel in about a minute: the routine unrolls over the head dim.)
    #[test]
    fn flash_attention_matches_the_reference_at_the_unets_shapes() {
        for (b, heads, n, m, d) in [
            (2, 8, 100, 100, 40),
            (2, 8, 100, 77, 40),
            (1, 3, 37, 81, 80),
            (2, 2, 50, 50, 160),
        ] {
            let err = attention_error(b, heads, n, m, d, DType::F32);
            assert!(
                err < 1e-5,
                "[{b}, {heads}, {n}, {d}] × {m} keys: relative error {err}"
            );
        }
    }

    #[test]
    fn flash_attention_in_f16_stays_within_half_precision() {
        let err = attention_error(2, 8, 64, 81, 40, DType::F16);
        assert!(err < 3e-3 && err > 0.0, "relative error {err}");
    }

    /// Small products stay on burn's attention; the routing itself gives the same numbers.
    #[test]
    fn attention_routes_by_size_with_the_same_result() {
        let gpu = wgpu();
        let q = Tensor::<4>::random([1, 1, 4096, 8], Distribution::Normal(0.0, 1.0), &gpu);
        let k = Tensor::<4>::random([1, 1, 4096, 8], Distribution::Normal(0.0, 1.0), &gpu);
        let v = Tensor::<4>::random([1, 1, 4096, 8], Distribution::Normal(0.0, 1.0), &gpu);
        const { assert!(4096 * 4096 >= consistentid_core::kernels::FLASH_MIN_SCORES) };
        let routed = values(attention(q.clone(), k.clone(), v.clone()));
        let reference = values(attention_reference(q, k, v));
        let err = routed
            .iter()
            .zip(&reference)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(err < 1e-4, "max difference {err}");
    }
}
