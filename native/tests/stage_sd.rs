//! The Stable Diffusion stages end to end (tokenize, text encoder, VAE, UNet, txt2img): their
//! safetensors outputs against the reference tensors, and their input errors.

mod common;

use common::*;
use consistentid_core::tensor_io::TensorFile;

#[test]
fn text_encoder_stage_writes_the_reference_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("out.safetensors");
    let model = fixture("clip_tiny_a");
    let out = run(&[
        "--device",
        "cpu",
        "stage",
        "text-encoder",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a photo of a cat",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got_bytes = std::fs::read(&out_path).unwrap();
    let got = TensorFile::parse("out", &got_bytes).unwrap();
    let want_bytes = std::fs::read(model.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &want_bytes).unwrap();
    // Prompt 0 of the fixture is "a photo of a cat".
    assert_eq!(
        got.i64("input_ids").unwrap(),
        want.i64("0.input_ids").unwrap()
    );
    for key in ["last_hidden_state", "penultimate_hidden_state"] {
        let (g, gs) = got.f32(key).unwrap();
        let (w, ws) = want.f32(&format!("0.{key}")).unwrap();
        assert_eq!(gs, ws);
        let err = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt()
            / w.iter().map(|b| b * b).sum::<f32>().sqrt();
        assert!(err <= 1e-4, "{key}: {err}");
    }
}

#[test]
fn tokenize_stage_knows_the_consistentid_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let out_path = tmp.path().join("ids.safetensors");
    let model = fixture("clip_tiny_a");
    let out = run(&[
        "stage",
        "tokenize",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "one face <|facial|>, <|image|>",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let (ids, shape) = TensorFile::parse("ids", &bytes)
        .unwrap()
        .i64("input_ids")
        .unwrap();
    assert_eq!(shape, [1, 77]);
    // The tiny vocabulary has 1114 entries, so the added tokens are 1114 and 1115.
    assert!(ids.contains(&1115) && ids.contains(&1114), "{ids:?}");
}

#[test]
fn vae_stages_write_the_reference_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("vae_tiny_a");
    let expected = model.join("expected.safetensors");
    let want_bytes = std::fs::read(&expected).unwrap();
    let want = TensorFile::parse("expected", &want_bytes).unwrap();
    for (stage, out_name, want_name) in [
        ("vae-decode", "image", "decoded"),
        ("vae-encode", "latent_mean", "latent_mean"),
    ] {
        let out_path = tmp.path().join(format!("{stage}.safetensors"));
        let out = run(&[
            "stage",
            stage,
            "--model",
            model.to_str().unwrap(),
            "--input",
            expected.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&out_path).unwrap();
        let (got, shape) = TensorFile::parse("out", &bytes)
            .unwrap()
            .f32(out_name)
            .unwrap();
        let (w, wshape) = want.f32(want_name).unwrap();
        assert_eq!(shape, wshape);
        assert!(rel_err(&got, &w) <= 1e-4, "{stage}");
    }
}

#[test]
fn vae_stage_input_errors_are_one_line() {
    let model = fixture("vae_tiny_b");
    // vae_tiny_a's latents have 4 channels; vae_tiny_b expects 3.
    let other = fixture("vae_tiny_a").join("expected.safetensors");
    let err = expect_error(&[
        "stage",
        "vae-decode",
        "--model",
        model.to_str().unwrap(),
        "--input",
        other.to_str().unwrap(),
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("channels"), "{err}");
    // A file without the named tensor.
    let ids = fixture("clip_tiny_a").join("expected.safetensors");
    let err = expect_error(&[
        "stage",
        "vae-decode",
        "--model",
        model.to_str().unwrap(),
        "--input",
        ids.to_str().unwrap(),
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("latents"), "{err}");
    let err = expect_error(&[
        "stage",
        "vae-encode",
        "--model",
        model.to_str().unwrap(),
        "--input",
        "/no/input.safetensors",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("/no/input.safetensors"), "{err}");
}

#[test]
fn unet_stage_writes_the_reference_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("unet_tiny_b");
    let expected = model.join("expected.safetensors");
    let out_path = tmp.path().join("unet.safetensors");
    let out = run(&[
        "stage",
        "unet",
        "--model",
        model.to_str().unwrap(),
        "--input",
        expected.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let (got, shape) = TensorFile::parse("out", &bytes)
        .unwrap()
        .f32("sample")
        .unwrap();
    let want_bytes = std::fs::read(&expected).unwrap();
    let (want, wshape) = TensorFile::parse("expected", &want_bytes)
        .unwrap()
        .f32("out")
        .unwrap();
    assert_eq!(shape, wshape);
    assert!(rel_err(&got, &want) <= 1e-4);
    // A context of the wrong width is a one-line error.
    let other = fixture("unet_tiny_a");
    let err = expect_error(&[
        "stage",
        "unet",
        "--model",
        other.to_str().unwrap(),
        "--input",
        expected.to_str().unwrap(),
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("encoder_hidden_states"), "{err}");
}

#[test]
fn txt2img_stage_matches_diffusers() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let want_bytes = std::fs::read(model.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &want_bytes).unwrap();
    let (init, shape) = want.f32("euler.init_latents").unwrap();
    let input = tmp.path().join("init.safetensors");
    let bytes = consistentid_core::tensor_io::to_safetensors(
        &[consistentid_core::tensor_io::NamedTensor::from_f32(
            "init_latents",
            shape,
            &init,
        )],
        None,
    )
    .unwrap();
    std::fs::write(&input, bytes).unwrap();
    let out_path = tmp.path().join("image.safetensors");
    let out = run(&[
        "stage",
        "txt2img",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--prompt",
        "a photo of a cat, 4k",
        "--negative-prompt",
        "blurry, lowres",
        "--steps",
        "4",
        "--guidance",
        "7.5",
        "--scheduler",
        "euler",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let (got, gshape) = TensorFile::parse("out", &bytes)
        .unwrap()
        .f32("image")
        .unwrap();
    let (w, wshape) = want.f32("euler.image").unwrap();
    assert_eq!(gshape, wshape);
    assert!(rel_err(&got, &w) <= 1e-3);
}
