//! The `consistentid` binary end to end: help, the backend choice, and one-line errors with a
//! non-zero exit code (never a panic) for bad model folders.

mod common;

use std::path::Path;

use common::*;

/// Runs `stage text-encoder` on a (damaged) model folder; returns its one-line error.
fn text_encoder_error(model: &Path) -> String {
    let model = model.to_str().unwrap();
    expect_error(&[
        "stage",
        "text-encoder",
        "--model",
        model,
        "--prompt",
        "x",
        "--out",
        "/tmp/x",
    ])
}

#[test]
fn help_lists_the_commands() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stage"), "{text}");
    let out = run(&["stage", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["tokenize", "text-encoder"] {
        assert!(text.contains(name), "{text}");
    }
}

#[test]
fn unavailable_backend_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let model = fixture("clip_tiny_a");
    let err = expect_error(&[
        "--device",
        "cuda",
        "stage",
        "text-encoder",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "x",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("--features cuda"), "{err}");
}

#[test]
fn missing_model_folder_is_one_line() {
    let err = expect_error(&[
        "stage",
        "text-encoder",
        "--model",
        "/no/such/dir",
        "--prompt",
        "x",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("/no/such/dir"), "{err}");
}

#[test]
fn missing_weights_name_the_file() {
    let tmp = copy_fixture("clip_tiny_a");
    std::fs::remove_file(tmp.path().join("text_encoder/model.safetensors")).unwrap();
    let err = text_encoder_error(tmp.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn truncated_weights_are_an_error() {
    let tmp = copy_fixture("clip_tiny_a");
    let path = tmp.path().join("text_encoder/model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = text_encoder_error(tmp.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn config_that_does_not_match_the_weights() {
    for (field, value) in [
        ("hidden_size", "50"),
        ("intermediate_size", "60"),
        ("num_hidden_layers", "2"),
        ("num_hidden_layers", "4"),
    ] {
        let tmp = copy_fixture("clip_tiny_a");
        let path = tmp.path().join("text_encoder/config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[field] = serde_json::Value::from(value.parse::<u64>().unwrap());
        std::fs::write(&path, config.to_string()).unwrap();
        let err = text_encoder_error(tmp.path());
        assert!(err.contains("do not match"), "{field}={value}: {err}");
    }
}

#[test]
fn malformed_config_is_an_error() {
    let tmp = copy_fixture("clip_tiny_a");
    std::fs::write(tmp.path().join("text_encoder/config.json"), "{ not json").unwrap();
    let err = text_encoder_error(tmp.path());
    assert!(err.contains("config.json"), "{err}");
}
