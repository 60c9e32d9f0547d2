//! Checkpoints as today's transformers (5.x) saves them load without a flag: the text encoder
//! without its `text_model.` prefix, the vision tower as transformers 5 writes it, both equal to
//! transformers 5's own outputs (tests/scripts/gen_transformers5.py).

use burn::tensor::{DType, Device};
use consistentid_core::clip::{ClipTextModel, ClipVisionModelWithProjection};
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture};

fn values(t: burn::tensor::Tensor<3>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn text_encoder_saved_by_transformers5_without_the_prefix() {
    let dir = fixture("transformers5");
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let model = ClipTextModel::load(&source, "text_encoder", None, DType::F32, &device).unwrap();
    let bytes = std::fs::read(dir.join("text_expected.safetensors")).unwrap();
    let want = TensorFile::parse("text_expected", &bytes).unwrap();
    let mut cases = 0;
    while let Ok((ids, _)) = want.i64(&format!("{cases}.input_ids")) {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        let out = model.forward_ids(&[ids], &device);
        for (key, tensor) in [
            ("last_hidden_state", out.last_hidden_state.clone()),
            ("penultimate_hidden_state", out.penultimate()),
        ] {
            let (expected, _) = want.f32(&format!("{cases}.{key}")).unwrap();
            assert_close(&format!("prompt {cases} {key}"), &values(tensor), &expected);
        }
        cases += 1;
    }
    assert!(cases >= 3, "only {cases} prompts in the fixture");
}

#[test]
fn vision_tower_saved_by_transformers5() {
    let dir = fixture("transformers5");
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let model =
        ClipVisionModelWithProjection::load(&source, "image_encoder", None, DType::F32, &device)
            .unwrap();
    let bytes = std::fs::read(dir.join("vision_expected.safetensors")).unwrap();
    let want = TensorFile::parse("vision_expected", &bytes).unwrap();
    let out = model
        .forward(want.tensor::<4>("pixel_values", &device).unwrap())
        .unwrap();
    let (penultimate, _) = want.f32("penultimate_hidden_state").unwrap();
    assert_close("penultimate", &values(out.penultimate()), &penultimate);
    let (embeds, _) = want.f32("image_embeds").unwrap();
    let got = out.image_embeds.into_data().try_to_vec::<f32>().unwrap();
    assert_close("image_embeds", &got, &embeds);
}
