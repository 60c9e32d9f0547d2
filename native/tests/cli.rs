//! The `consistentid` binary end to end: help, stage outputs, and one-line errors with a
//! non-zero exit code (never a panic) for bad model folders.

mod common;

use std::path::Path;

use common::*;
use consistentid_core::tensor_io::TensorFile;

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

fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    let diff: f32 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    (diff / want.iter().map(|b| b * b).sum::<f32>()).sqrt()
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
fn generate_writes_pngs_with_parameters_and_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let args = |out: &Path, seed: &str| {
        vec![
            "generate".to_string(),
            "--model".into(),
            model.to_str().unwrap().into(),
            "--prompt".into(),
            "a photo of a cat".into(),
            "--negative-prompt".into(),
            "blurry".into(),
            "--steps".into(),
            "3".into(),
            "--seed".into(),
            seed.into(),
            "--width".into(),
            "16".into(),
            "--height".into(),
            "24".into(),
            "--num-images".into(),
            "2".into(),
            "--scheduler".into(),
            "euler-a".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let out = bin().args(args(dir, "7")).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("seed: 7"));
    }
    let first = std::fs::read(a.join("7-0.png")).unwrap();
    // Same seed, same image; the second image uses seed + 1 and differs.
    assert_eq!(first, std::fs::read(b.join("7-0.png")).unwrap());
    assert_ne!(first, std::fs::read(a.join("8-1.png")).unwrap());
    let (size, params) = png_parameters(&a.join("7-0.png"));
    assert_eq!(size, (16, 24));
    assert!(
        params.starts_with("a photo of a cat\nNegative prompt: blurry\nSteps: 3, Sampler: Euler a"),
        "{params}"
    );
    assert!(params.contains("Seed: 7, Size: 16x24"), "{params}");
}

#[test]
fn generate_rejects_bad_sizes_in_one_line() {
    let model = fixture("sd_tiny");
    let err = expect_error(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "x",
        "--width",
        "15",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("--width must be a multiple of 8"), "{err}");
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

#[test]
fn single_file_checkpoints_need_a_tokenizer_and_sd15_weights() {
    let file = fixture("sd_tiny_single_file.safetensors");
    let err = expect_error(&[
        "generate",
        "--model",
        file.to_str().unwrap(),
        "--prompt",
        "x",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("--tokenizer"), "{err}");
    // The tiny checkpoint is not SD1.5-sized: a clear mismatch, not a panic.
    let tokenizer = fixture("sd_tiny/tokenizer");
    let err = expect_error(&[
        "generate",
        "--model",
        file.to_str().unwrap(),
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--prompt",
        "x",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("do not match"), "{err}");
}

fn read_out(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("the stage wrote its output")
}

#[test]
fn onnx_stage_runs_a_graph_by_its_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixture("onnx/iresnet50_tiny.safetensors");
    let o = run(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("out", &bytes).unwrap();
    let want_bytes = std::fs::read(&case).unwrap();
    let want = TensorFile::parse("case", &want_bytes).unwrap();
    assert!(
        rel_err(
            &got.f32("fc1").unwrap().0,
            &want.f32("expected.fc1").unwrap().0
        ) < 1e-4
    );

    // An op outside the set, a truncated file, an input file without the graph's inputs.
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/unsupported_erf.onnx").to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("unsupported ONNX op `Erf`") && err.contains("the_erf"),
        "{err}"
    );
    let cut = tmp.path().join("cut.onnx");
    let full = std::fs::read(fixture("onnx/iresnet50_tiny.onnx")).unwrap();
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        cut.to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("cut.onnx"), "{err}");
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--input",
        fixture("onnx/gemm.safetensors").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("input.1"), "{err}");
}

#[test]
fn detect_stage_finds_the_real_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("det.safetensors");
    let img = real_data("images/astronaut.png");
    for (detector, weights, points) in [
        ("mtcnn", real_data("mtcnn"), 5),
        (
            "blazeface",
            real_data("blazeface/face_detection_front_128x128_barracuda.onnx"),
            6,
        ),
    ] {
        let o = run(&[
            "stage",
            "detect",
            "--detector",
            detector,
            "--weights",
            weights.to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = read_out(&out);
        let got = TensorFile::parse("det", &bytes).unwrap();
        let (boxes, shape) = got.f32("boxes").unwrap();
        assert_eq!(shape, [1, 4], "{detector}");
        // real-data.md: the face is about (178,58)-(268,174); BlazeFace's box starts lower on
        // the forehead (y1 ≈ 81).
        for (b, r) in boxes.iter().zip([178.0, 58.0, 268.0, 174.0]) {
            assert!((b - r).abs() < 25.0, "{detector}: {boxes:?}");
        }
        assert_eq!(got.f32("landmarks").unwrap().1, [1, points, 2]);
    }
    // SCRFD (the replica graph) at a custom size.
    let o = run(&[
        "stage",
        "detect",
        "--detector",
        "scrfd",
        "--weights",
        fixture("onnx/scrfd_tiny_det.onnx").to_str().unwrap(),
        "--det-size",
        "160x128",
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let want_bytes = std::fs::read(fixture("face/astronaut_official.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    let got = TensorFile::parse("det", &bytes).unwrap();
    assert_eq!(got.f32("scores").unwrap().1, want.f32("scores").unwrap().1);
}

#[test]
fn arcface_stage_matches_insightface_on_the_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("emb.safetensors");
    let img = real_data("images/astronaut.png");
    let landmarks = format!("scrfd:{}", fixture("onnx/scrfd_tiny_det.onnx").display());
    let o = run(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--landmarks-from",
        &landmarks,
        "--det-size",
        "160x128",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The replica finds hundreds of "faces": the stage lists them in a warning.
    assert!(stderr.contains("warning: 433 faces found"), "{stderr}");
    let bytes = read_out(&out);
    let got = TensorFile::parse("emb", &bytes).unwrap();
    let want_bytes = std::fs::read(fixture("face/astronaut_official.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    assert!(
        rel_err(
            &got.f32("normed_embedding").unwrap().0,
            &want.f32("normed_embedding").unwrap().0
        ) < 1e-4
    );
    assert_eq!(got.f32("aligned").unwrap().1, [1, 3, 112, 112]);
}

#[test]
fn face_stage_input_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    // A black image: no face.
    let black = tmp.path().join("black.png");
    let file = std::fs::File::create(&black).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 200, 200);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header()
        .unwrap()
        .write_image_data(&vec![0u8; 200 * 200 * 3])
        .unwrap();
    let mtcnn = format!("mtcnn:{}", real_data("mtcnn").display());
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        black.to_str().unwrap(),
        "--landmarks-from",
        &mtcnn,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("no face found") && err.contains("black.png"),
        "{err}"
    );
    // A corrupt image.
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let err = expect_error(&[
        "stage",
        "detect",
        "--detector",
        "mtcnn",
        "--weights",
        real_data("mtcnn").to_str().unwrap(),
        "--image",
        corrupt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("corrupt.jpg"), "{err}");
    // Face index beyond the faces found; a non-crop without landmarks.
    let img = real_data("images/astronaut.png");
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--landmarks-from",
        &mtcnn,
        "--face",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("face index 3") && err.contains("1 face"),
        "{err}"
    );
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("aligned 112x112 crop"), "{err}");
}

#[test]
fn parsing_stages_match_the_official_region_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let img = real_data("images/astronaut.png");
    let weights = fixture("bisenet_tiny/face_parsing.pth");
    let want_bytes = std::fs::read(fixture("bisenet_tiny/expected.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();

    let o = run(&[
        "stage",
        "bisenet",
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (labels, shape) = got.i64("labels").unwrap();
    assert_eq!(shape, [512, 512]);
    let (ref_labels, _) = want.i64("astronaut.labels").unwrap();
    assert!(
        labels
            .iter()
            .zip(&ref_labels)
            .filter(|(a, b)| a != b)
            .count()
            <= 5
    );
    assert_eq!(got.f32("logits").unwrap().1, [1, 19, 512, 512]);

    let spec = format!("bisenet:{}", weights.display());
    let o = run(&[
        "stage",
        "face-regions",
        "--labels-from",
        &spec,
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (valid, _) = got.i64("region_valid").unwrap();
    let (region_labels, _) = want.i64("astronaut.region_labels").unwrap();
    let kept = region_labels.len();
    assert_eq!(valid, [vec![1; kept], vec![0; 5 - kept]].concat());
    let (masks, _) = got.f32("masks").unwrap();
    for k in 0..kept {
        let (bits, _) = want.i64(&format!("astronaut.region{k}.mask")).unwrap();
        let differ = (0..512 * 512)
            .filter(|&i| {
                ((bits[i / 8] >> (7 - i % 8)) & 1 == 1) != (masks[k * 512 * 512 + i] > 0.5)
            })
            .count();
        assert!(differ <= 5, "region {k}: {differ} pixels differ");
    }

    let o = run(&[
        "stage",
        "region-images",
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (pixels, shape) = got.f32("region_pixel_values").unwrap();
    assert_eq!(shape, [5, 3, 224, 224]);
    let n = 224 * 224;
    for k in 0..kept {
        let (sums, _) = want.f64(&format!("astronaut.region{k}.pixel_sum")).unwrap();
        let (patch, _) = want
            .f32(&format!("astronaut.region{k}.pixel_patch"))
            .unwrap();
        for c in 0..3 {
            let base = (k * 3 + c) * n;
            let sum: f64 = pixels[base..base + n].iter().map(|&v| f64::from(v)).sum();
            assert!(
                (sum - sums[c]).abs() < 1e-2 * (1.0 + sums[c].abs()),
                "region {k} channel {c}: {sum} vs {}",
                sums[c]
            );
            for y in 0..32 {
                for x in 0..32 {
                    let a = pixels[base + (96 + y) * 224 + 96 + x];
                    let b = patch[(c * 32 + y) * 32 + x];
                    assert!(
                        (a - b).abs() < 1e-5,
                        "region {k}: pixel ({x},{y}) {a} vs {b}"
                    );
                }
            }
        }
    }
    assert!(
        pixels[kept * 3 * n..].iter().all(|&v| v == 0.0),
        "absent regions are zero"
    );
}

/// EXIF orientation is applied on load, as diffusers' `load_image` (Pillow `exif_transpose`).
#[test]
fn exif_orientation_is_applied() {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 2, 1);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        // TIFF header (big-endian), one IFD entry: Orientation (0x0112) = 6, "rotate 90° CW".
        let exif = [
            0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0,
            0, 0, 0,
        ];
        w.write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif)
            .unwrap();
        w.write_image_data(&[255, 0, 0, 0, 0, 255]).unwrap();
    }
    let img = consistentid_core::image::decode(&bytes, "rotated.png").unwrap();
    assert_eq!((img.width, img.height), (1, 2));
    assert_eq!(
        img.data,
        [255, 0, 0, 0, 0, 255],
        "red above blue after the rotation"
    );
}

#[test]
fn consistentid_module_stages_match_the_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let dir = fixture("consistentid_tiny");
    let input = dir.join("expected.safetensors");
    let want_bytes = std::fs::read(&input).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    for (stage, name, reference) in [
        ("id-tokens", "id_tokens", "id_tokens"),
        ("facial-encoder", "prompt_embeds", "fused_prompt_embeds"),
    ] {
        let o = run(&[
            "stage",
            stage,
            "--model",
            dir.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = read_out(&out);
        let got = TensorFile::parse("o", &bytes).unwrap();
        assert!(
            rel_err(&got.f32(name).unwrap().0, &want.f32(reference).unwrap().0) < 1e-4,
            "{stage}"
        );
    }
    // A folder without the checkpoint says which file and how to get it.
    let err = expect_error(&[
        "stage",
        "id-tokens",
        "--model",
        tmp.path().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("ConsistentID-v1.bin") && err.contains("consistentid fetch"),
        "{err}"
    );
}

/// sd_tiny + the ConsistentID parts of the tiny pipeline replica, as one model folder.

#[test]
fn consistentid_stages_match_the_pipeline_replica() {
    let dir = consistentid_folder();
    let out = dir.path().join("o.safetensors");
    let expected = fixture("consistentid_pipeline/expected.safetensors");
    let want_bytes = std::fs::read(&expected).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    let face = real_data("images/astronaut.png");
    let common = [
        "--model",
        dir.path().to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--id-embedding",
        expected.to_str().unwrap(),
        "--prompt",
        "a photo of a person as an astronaut, highly detailed",
        "--negative-prompt",
        "blurry, lowres",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = run(&[&["stage", "consistentid-prompt"][..], &common[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    assert_eq!(
        got.i64("input_ids").unwrap(),
        want.i64("input_ids").unwrap()
    );
    assert_eq!(
        got.i64("facial_token_idx_mask").unwrap(),
        want.i64("facial_token_idx_mask").unwrap()
    );
    for name in ["null", "augmented", "text_only"] {
        assert!(
            rel_err(&got.f32(name).unwrap().0, &want.f32(name).unwrap().0) < 1e-4,
            "{name}"
        );
    }
    let o = run(&[
        &["stage", "consistentid"][..],
        &common[..],
        &[
            "--steps",
            "5",
            "--guidance",
            "5",
            "--merge-step",
            "2",
            "--init-latents",
            expected.to_str().unwrap(),
        ][..],
    ]
    .concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    assert!(rel_err(&got.f32("image").unwrap().0, &want.f32("image").unwrap().0) < 1e-3);

    // Without --id-embedding the folder needs buffalo_l's ONNX files.
    let err = expect_error(
        &[
            &["stage", "consistentid-prompt"][..],
            &common[..4],
            &common[6..],
        ]
        .concat(),
    );
    assert!(
        err.contains("det_10g.onnx") && err.contains("--id-embedding"),
        "{err}"
    );
}

#[test]
fn generate_with_a_face_writes_consistentid_pngs() {
    let dir = consistentid_folder();
    let out = dir.path().join("images");
    let expected = fixture("consistentid_pipeline/expected.safetensors");
    let face = real_data("images/astronaut.png");
    let base = [
        "generate",
        "--model",
        dir.path().to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--id-embedding",
        expected.to_str().unwrap(),
        "--prompt",
        "an astronaut",
        "--steps",
        "2",
        "--merge-step",
        "0",
        "--width",
        "48",
        "--height",
        "64",
        "--seed",
        "7",
        "--num-images",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = run(&base);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    for stage in ["detect + ArcFace", "parse", "encode", "denoise", "decode"] {
        assert!(
            stderr.contains(stage),
            "timing of {stage} missing: {stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("seed: 7"), "{stdout}");
    for name in ["7-0.png", "8-1.png"] {
        let (size, text) = png_parameters(&out.join(name));
        assert_eq!(size, (48, 64));
        // The default style wraps the prompt as the official infer.py.
        assert!(
            text.starts_with("cinematic photo,an astronaut, 50mm photograph"),
            "{text}"
        );
        assert!(
            text.contains("Merge step: 0") && text.contains("CFG scale: 5"),
            "{text}"
        );
        // The face's file name, never its local path.
        assert!(
            text.contains("Face: astronaut.png,") && !text.contains("/astronaut.png"),
            "{text}"
        );
    }
    let err = expect_error(&[&base[..], &["--style", "nope"][..]].concat());
    assert!(
        err.contains("unknown style `nope`") && err.contains("Film Noir"),
        "{err}"
    );
}
