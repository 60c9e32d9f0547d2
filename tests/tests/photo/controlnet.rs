//! `ControlNetModel` against diffusers 0.23 (tests/scripts/gen_controlnet.py) on tiny random
//! weights: every down residual and the mid residual at conditioning scale 0.7, an rgb and a
//! bgr + global-pooling ControlNet, and the UNet's prediction with the residuals added;
//! relative L2 ≤ 1e-4. Plus the refusals of a ControlNet that does not fit the model.

use burn::tensor::{DType, Device, Tensor};
use consistentid_core::controlnet::{ControlNetConfig, ControlNetModel};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

#[test]
fn residuals_and_the_controlled_unet_equal_diffusers() {
    let device = Device::flex();
    let source = DirSource::open(fixture("controlnet_tiny")).unwrap();
    let bytes = std::fs::read(fixture("controlnet_tiny/expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let sample = want.tensor::<4>("sample", &device).unwrap();
    let t = want.tensor::<1>("timestep", &device).unwrap();
    let context = want.tensor::<3>("encoder_hidden_states", &device).unwrap();
    let cond = want.tensor::<4>("cond", &device).unwrap();
    let mut first = None;
    for (dir, prefix) in [("controlnet", ""), ("controlnet_bgr", "bgr.")] {
        let net = ControlNetModel::load(&source, dir, None, DType::F32, &device).unwrap();
        let out = net.forward(
            sample.clone(),
            t.clone(),
            context.clone(),
            cond.clone(),
            0.7,
        );
        assert_eq!(out.down.len(), 4);
        for (i, d) in out.down.iter().enumerate() {
            let key = format!("{prefix}down.{i}");
            assert_close(&key, &values(d.clone()), &want.f32(&key).unwrap().0);
        }
        let key = format!("{prefix}mid");
        assert_close(&key, &values(out.mid.clone()), &want.f32(&key).unwrap().0);
        first.get_or_insert(out);
    }
    let unet = UNet2DConditionModel::load(
        &DirSource::open(fixture("sd_tiny")).unwrap(),
        "unet",
        None,
        DType::F32,
        &device,
    )
    .unwrap();
    let pred = unet.forward_controlled(sample, t, context, first.as_ref());
    assert_close("unet_out", &values(pred), &want.f32("unet_out").unwrap().0);
}

/// A single file in the LDM / A1111 layout (diffusers' own converter turns it back into the
/// folder's tensors exactly) gives diffusers' residuals.
#[test]
fn a_single_file_controlnet_equals_diffusers() {
    let device = Device::flex();
    let dir = fixture("controlnet_tiny");
    let config_text = std::fs::read_to_string(dir.join("single_file_config.json")).unwrap();
    let config = ControlNetConfig::from_json("single_file_config.json", &config_text).unwrap();
    let source = DirSource::open(&dir).unwrap();
    let net = ControlNetModel::load_single_file(
        &source,
        "single_file.safetensors",
        &config,
        DType::F32,
        &device,
    )
    .unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let t = |n: &str| want.tensor::<4>(n, &device).unwrap();
    let out = net.forward(
        t("sample"),
        want.tensor::<1>("timestep", &device).unwrap(),
        want.tensor::<3>("encoder_hidden_states", &device).unwrap(),
        t("cond_single"),
        0.7,
    );
    for (i, d) in out.down.iter().enumerate() {
        let key = format!("single.down.{i}");
        assert_close(&key, &values(d.clone()), &want.f32(&key).unwrap().0);
    }
    assert_close(
        "single.mid",
        &values(out.mid),
        &want.f32("single.mid").unwrap().0,
    );
}

#[test]
fn a_controlnet_for_another_model_is_refused() {
    let device = Device::flex();
    let source = DirSource::open(fixture("controlnet_tiny")).unwrap();
    let net = ControlNetModel::load(&source, "controlnet", None, DType::F32, &device).unwrap();
    let load = |name: &str| {
        UNet2DConditionModel::load(
            &DirSource::open(fixture(name)).unwrap(),
            "unet",
            None,
            DType::F32,
            &device,
        )
        .unwrap()
    };
    net.check_fits(&load("sd_tiny"), "controlnet").unwrap();
    // Another text width (as an SDXL ControlNet on an SD1.5 model).
    let other = load("unet_tiny_a");
    let err = net
        .check_fits(&other, "controlnet")
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not fit the model"), "{err}");
}
