//! AutoencoderKL encode and decode against diffusers 0.23 on tiny random-weight VAEs (fixtures
//! from `tests/scripts/gen_vae.py`): non-square images, 2 and 3 resolution levels, f32 and
//! fp16-variant weight files; relative L2 error ≤ 1e-4.

use burn::tensor::{DType, Device};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::vae::AutoencoderKL;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture};

fn check(name: &str) {
    let dir = fixture(name);
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let vae = AutoencoderKL::load(&source, "vae", None, DType::F32, &device).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let file = TensorFile::parse("expected", &bytes).unwrap();

    let dist = vae.encode(file.tensor::<4>("image", &device).unwrap());
    for (key, got) in [("latent_mean", dist.mean), ("latent_logvar", dist.logvar)] {
        let (want, shape) = file.f32(key).unwrap();
        assert_eq!(got.dims().to_vec(), shape, "{name} {key}");
        assert_close(
            &format!("{name} {key}"),
            &got.into_data().try_to_vec::<f32>().unwrap(),
            &want,
        );
    }
    let decoded = vae.decode_latents(file.tensor::<4>("latents", &device).unwrap());
    let (want, shape) = file.f32("decoded").unwrap();
    assert_eq!(decoded.dims().to_vec(), shape, "{name} decoded");
    assert_close(
        &format!("{name} decoded"),
        &decoded.into_data().try_to_vec::<f32>().unwrap(),
        &want,
    );
}

#[test]
fn tiny_three_levels_f32() {
    check("vae_tiny_a");
}

#[test]
fn tiny_two_levels_fp16_variant() {
    check("vae_tiny_b");
}
