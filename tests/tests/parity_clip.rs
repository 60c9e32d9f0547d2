//! CLIP tokenizer + text encoder against transformers 4.31 on tiny random-weight models
//! (fixtures from `tests/scripts/gen_clip_text.py`): f32, f16-variant and bf16 weight files,
//! quick_gelu and gelu, pad token `<|endoftext|>` and `!`.

use burn::tensor::{DType, Device};
use consistentid_core::clip::{ClipTextModel, ClipTokenizer};
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture};

fn check_case(name: &str) {
    let dir = fixture(name);
    let source = DirSource::open(&dir).unwrap();
    let device = Device::flex();
    let tokenizer = ClipTokenizer::from_source(&source, "tokenizer").unwrap();
    let model = ClipTextModel::load(&source, "text_encoder", None, DType::F32, &device).unwrap();
    let prompts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("prompts.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let expected = TensorFile::parse("expected", &bytes).unwrap();
    for (i, prompt) in prompts.iter().enumerate() {
        let ids = tokenizer.encode_padded(prompt, 77);
        let (want_ids, _) = expected.i64(&format!("{i}.input_ids")).unwrap();
        let got: Vec<i64> = ids.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(got, want_ids, "{name} prompt {i} ids");
        let out = model.forward_ids(&[ids], &device);
        for (key, tensor) in [
            ("last_hidden_state", out.last_hidden_state.clone()),
            ("penultimate_hidden_state", out.penultimate()),
        ] {
            let (want, shape) = expected.f32(&format!("{i}.{key}")).unwrap();
            assert_eq!(tensor.dims().to_vec(), shape, "{name} {key} shape");
            let got = tensor.into_data().try_to_vec::<f32>().unwrap();
            assert_close(&format!("{name} prompt {i} {key}"), &got, &want);
        }
    }
}

#[test]
fn tiny_f32_quick_gelu() {
    check_case("clip_tiny_a");
}

#[test]
fn tiny_fp16_variant_gelu_bang_padding() {
    check_case("clip_tiny_b");
}

#[test]
fn tiny_bf16_weights() {
    check_case("clip_tiny_c");
}

#[test]
fn all_hidden_states_are_returned() {
    let source = DirSource::open(fixture("clip_tiny_c")).unwrap();
    let device = Device::flex();
    let model = ClipTextModel::load(&source, "text_encoder", None, DType::F32, &device).unwrap();
    let out = model.forward_ids(&[vec![1012, 5, 1013]], &device);
    // Embeddings + 4 layers.
    assert_eq!(out.hidden_states.len(), 5);
    assert_eq!(out.last_hidden_state.dims(), [1, 3, 24]);
}
