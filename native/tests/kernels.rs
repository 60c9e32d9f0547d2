//! core's fused CubeCL kernels (core/src/kernels) on wgpu against their plain tensor-op
//! references on the CPU backend. Built with `--features wgpu` (scripts/test.sh does); it needs a
//! Vulkan adapter: Mesa's lavapipe where there is no GPU (scripts/install-tools.sh installs it).
#![cfg(feature = "wgpu")]

use burn::module::Param;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use consistentid_core::kernels::{
    attention, attention_reference, flash_attention, group_norm, group_norm_reference,
};

/// A GroupNorm with random affine parameters (away from 1 and 0, so a swapped or ignored one
/// shows) on `device`, from values drawn once.
fn norm(
    groups: usize,
    channels: usize,
    eps: f64,
    gamma: &[f32],
    beta: &[f32],
    device: &Device,
) -> GroupNorm {
    let mut norm = GroupNormConfig::new(groups, channels)
        .with_epsilon(eps)
        .init(device);
    norm.gamma = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(gamma.to_vec(), [channels]),
        device,
    )));
    norm.beta = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(beta.to_vec(), [channels]),
        device,
    )));
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

/// The kernel on wgpu (in `dtype`) against burn's GroupNorm on the CPU in f32.
fn kernel_error(shape: [usize; 4], groups: usize, then_silu: bool, dtype: DType) -> f32 {
    let cpu = Device::flex();
    let gpu = Device::wgpu(Default::default());
    let channels = shape[1];
    // An offset mean (3.0) checks the centred variance; a spread of scales, the affine.
    let x = Tensor::<4>::random(shape, Distribution::Normal(3.0, 1.5), &cpu);
    let gamma = Tensor::<1>::random([channels], Distribution::Uniform(0.5, 2.0), &cpu);
    let beta = Tensor::<1>::random([channels], Distribution::Uniform(-1.0, 1.0), &cpu);
    let (gamma, beta) = (
        gamma.into_data().try_to_vec::<f32>().unwrap(),
        beta.into_data().try_to_vec::<f32>().unwrap(),
    );
    let want = values(group_norm_reference(
        &norm(groups, channels, 1e-5, &gamma, &beta, &cpu),
        x.clone(),
        then_silu,
    ));

    let x_gpu = Tensor::<4>::from_data(x.into_data(), &gpu).cast(dtype);
    let gpu_norm = norm(groups, channels, 1e-5, &gamma, &beta, &gpu);
    relative_error(&values(group_norm(&gpu_norm, x_gpu, then_silu)), &want)
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
            let err = kernel_error(shape, groups, then_silu, DType::F32);
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
        let err = kernel_error([2, 64, 17, 19], 32, then_silu, DType::F16);
        assert!(
            err < 2e-3 && err > 0.0,
            "silu {then_silu}: relative error {err}"
        );
    }
}

/// The flash routine on wgpu (in `dtype`) against burn's attention on the CPU in f32.
fn attention_error(b: usize, heads: usize, n: usize, m: usize, d: usize, dtype: DType) -> f32 {
    let cpu = Device::flex();
    let gpu = Device::wgpu(Default::default());
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
    let gpu = Device::wgpu(Default::default());
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
