//! ProjPlusModel and FacialEncoder against the PyTorch re-creation of the official modules
//! (tests/scripts/gen_consistentid_modules.py), loaded from a checkpoint in the official
//! structure (nested dict, bf16 `image_proj`, f32 `FacialEncoder`).

use burn::tensor::{Device, Tensor, TensorData};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::tensor_io::TensorFile;
use consistentid_tests::{assert_close, fixture};

#[test]
fn modules_match_the_pytorch_reference() {
    let dir = fixture("consistentid_tiny");
    let device = Device::flex();
    let bytes = std::fs::read(dir.join("ConsistentID-v1.bin")).unwrap();
    let modules = ConsistentIdModules::load(&bytes, "ConsistentID-v1.bin", &device).unwrap();
    assert_eq!(modules.image_proj.num_tokens, 4);
    assert_eq!(
        modules.adapter_modules.len(),
        2,
        "adapter tensors are handed on, not consumed"
    );
    let data = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &data).unwrap();
    let t2 = |name: &str| want.tensor::<2>(name, &device).unwrap();
    let t3 = |name: &str| want.tensor::<3>(name, &device).unwrap();

    let id_tokens = modules
        .image_proj
        .forward(t2("id_embedding"), t3("clip_penultimate"))
        .unwrap();
    assert_eq!(id_tokens.dims(), [1, 4, 32]);
    assert_close(
        "id_tokens",
        &id_tokens.into_data().try_to_vec::<f32>().unwrap(),
        &want.f32("id_tokens").unwrap().0,
    );

    let (regions, shape) = want.f32("region_hidden_states").unwrap();
    let regions: Tensor<3> = Tensor::from_data(
        TensorData::new(regions, [shape[1], shape[2], shape[3]]),
        &device,
    );
    let mask: Vec<bool> = want
        .i64("facial_token_mask")
        .unwrap()
        .0
        .iter()
        .map(|&v| v != 0)
        .collect();
    let valid: Vec<bool> = want
        .i64("facial_token_idx_mask")
        .unwrap()
        .0
        .iter()
        .map(|&v| v != 0)
        .collect();
    let fused = modules
        .facial_encoder
        .forward(t3("prompt_embeds"), regions.clone(), &mask, &valid)
        .unwrap();
    assert_close(
        "fused prompt",
        &fused.into_data().try_to_vec::<f32>().unwrap(),
        &want.f32("fused_prompt_embeds").unwrap().0,
    );

    // More facial tokens than valid regions is an error, not a panic.
    let mut wrong = mask.clone();
    wrong[20] = true;
    let err = modules
        .facial_encoder
        .forward(t3("prompt_embeds"), regions, &wrong, &valid)
        .err()
        .unwrap();
    assert!(err.to_string().contains("4 facial tokens"), "{err}");
}

#[test]
fn wrong_checkpoints_are_clear_errors() {
    let device = Device::flex();
    let bytes = std::fs::read(fixture("consistentid_tiny/ConsistentID-v1.bin")).unwrap();
    let err = ConsistentIdModules::load(&bytes[..bytes.len() - 1000], "cut.bin", &device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("cut.bin"), "{err}");
    let other = std::fs::read(fixture("bisenet_tiny/face_parsing.pth")).unwrap();
    let err = ConsistentIdModules::load(&other, "face_parsing.pth", &device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("missing"), "{err}");
}
