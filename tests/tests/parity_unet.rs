//! UNet2DConditionModel against diffusers 0.23 on tiny random-weight UNets (fixtures from
//! `tests/scripts/gen_unet.py`): non-square and odd latents, odd head counts, conv and linear
//! projections, 77 and 81 context tokens, batch 2, f32 and fp16-variant weights, widths that are
//! not multiples of their head counts; relative L2
//! error ≤ 1e-4.

use burn::tensor::{DType, Device, Tensor, TensorData};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture};

fn check(name: &str) {
    let dir = fixture(name);
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let unet = UNet2DConditionModel::load(&source, "unet", None, DType::F32, &device).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let file = TensorFile::parse("expected", &bytes).unwrap();
    let (t, tshape) = file.f32("timestep").unwrap();
    let timesteps = Tensor::<1>::from_data(TensorData::new(t, tshape), &device);
    let out = unet.forward(
        file.tensor::<4>("sample", &device).unwrap(),
        timesteps,
        file.tensor::<3>("encoder_hidden_states", &device).unwrap(),
    );
    let (want, shape) = file.f32("out").unwrap();
    assert_eq!(out.dims().to_vec(), shape, "{name}");
    assert_close(name, &out.into_data().try_to_vec::<f32>().unwrap(), &want);
}

#[test]
fn tiny_two_levels_conv_projection() {
    check("unet_tiny_a");
}

#[test]
fn tiny_odd_latent_linear_projection_81_tokens_fp16() {
    check("unet_tiny_b");
}

#[test]
fn tiny_widths_not_multiples_of_their_head_counts() {
    // diffusers floors the head width: 40 channels with 3 heads attend in 39 dims.
    check("unet_tiny_c");
}
