//! The UNet with ConsistentID's attention processors (LoRA on every attention, LoRA +
//! decoupled IP-Adapter attention over the 4 trailing ID tokens on cross-attention) against a
//! PyTorch reference on diffusers 0.23 (fixture from `tests/scripts/gen_unet_adapters.py`),
//! with adapter weights keyed by diffusers' processor index; relative L2 error ≤ 1e-4.

use burn::tensor::{DType, Device, Tensor, TensorData};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture, rel_l2};

#[test]
fn processor_order_matches_diffusers() {
    let dir = fixture("unet_tiny_ip");
    let source = DirSource::open(&dir).unwrap();
    let unet =
        UNet2DConditionModel::load(&source, "unet", None, DType::F32, &Device::flex()).unwrap();
    let want: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("attn_processors.json")).unwrap())
            .unwrap();
    assert_eq!(unet.attention_paths(), want);
}

#[test]
fn ip_lora_unet_matches_reference() {
    let dir = fixture("unet_tiny_ip");
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let mut unet = UNet2DConditionModel::load(&source, "unet", None, DType::F32, &device).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let file = TensorFile::parse("expected", &bytes).unwrap();
    let (t, tshape) = file.f32("timestep").unwrap();
    let run = |unet: &UNet2DConditionModel| {
        unet.forward(
            file.tensor::<4>("sample", &device).unwrap(),
            Tensor::<1>::from_data(TensorData::new(t.clone(), tshape.clone()), &device),
            file.tensor::<3>("encoder_hidden_states", &device).unwrap(),
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
    };
    let (want, _) = file.f32("out").unwrap();
    // Without the processors the output is far off: the adapters matter in this fixture.
    assert!(rel_l2(&run(&unet), &want) > 1e-2);
    unet.load_ip_lora_adapters(&source, "adapter.safetensors", 4, 0.7, DType::F32, &device)
        .unwrap();
    assert_close("unet with IP/LoRA processors", &run(&unet), &want);
}

#[test]
fn adapter_file_that_does_not_fit_is_an_error() {
    // unet_tiny_b's attention widths differ from the adapters'.
    let device = Device::flex();
    let base = DirSource::open(fixture("unet_tiny_b")).unwrap();
    let mut unet = UNet2DConditionModel::load(&base, "unet", None, DType::F32, &device).unwrap();
    let adapters = DirSource::open(fixture("unet_tiny_ip")).unwrap();
    let err = unet
        .load_ip_lora_adapters(
            &adapters,
            "adapter.safetensors",
            4,
            1.0,
            DType::F32,
            &device,
        )
        .unwrap_err();
    assert!(err.to_string().contains("adapter.safetensors"), "{err}");
}
