//! `consistentid generate` end to end: PNGs with their parameters and seeds, sizes, single-file
//! checkpoints, and ConsistentID portraits with a face.

mod common;

use std::path::Path;

use common::*;

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
