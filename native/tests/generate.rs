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
    let args = face_args(
        dir.path(),
        &out,
        &[
            "--steps",
            "2",
            "--merge-step",
            "0",
            "--seed",
            "7",
            "--num-images",
            "2",
        ],
    );
    let base: Vec<&str> = args.iter().map(String::as_str).collect();
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
        // No recogniser in this folder (a stored identity): the likeness says why it is missing.
        assert!(
            text.ends_with(
                "Face similarity: none (no face recognition model (buffalo_l) in the model folder)"
            ),
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

/// `--best-of 3 --num-images 1`: three candidates from consecutive seeds, each scored against
/// the identity (replica buffalo_l graphs in the folder), the most alike written, its score in
/// the PNG and every candidate's on the terminal.
#[test]
fn best_of_keeps_the_most_alike_candidate() {
    let dir = consistentid_folder();
    for (from, to) in [
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
    ] {
        std::fs::copy(fixture(from), dir.path().join(to)).unwrap();
    }
    let out = dir.path().join("best");
    let args = face_args(
        dir.path(),
        &out,
        &[
            "--steps",
            "2",
            "--merge-step",
            "1",
            "--seed",
            "3",
            "--best-of",
            "3",
        ],
    );
    let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // "  seed 4: face similarity 0.123 (kept)"
    let scores: Vec<(u64, f64, bool)> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("seed "))
        .map(|l| {
            let (seed, rest) = l.split_once(": face similarity ").unwrap();
            let value = rest.split_whitespace().next().unwrap();
            (
                seed.parse().unwrap(),
                value.parse().unwrap(),
                rest.ends_with("(kept)"),
            )
        })
        .collect();
    assert_eq!(scores.len(), 3, "{stderr}");
    assert_eq!(scores.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 4, 5]);
    let kept: Vec<_> = scores.iter().filter(|s| s.2).collect();
    assert_eq!(kept.len(), 1, "{stderr}");
    assert!(scores.iter().all(|s| s.1 <= kept[0].1), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let name = format!("{}-0.png", kept[0].0);
    assert!(stdout.contains(&name), "{stdout}");
    let (_, text) = png_parameters(&out.join(&name));
    assert!(
        text.contains(&format!("Face similarity: {:.3}, Best of: 3", kept[0].1)),
        "{text}"
    );
    // Fewer candidates than images is refused before any compute, naming the flags.
    let args = face_args(dir.path(), &out, &["--num-images", "2", "--best-of", "1"]);
    let err = expect_error(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains("--best-of") && err.contains("--num-images"),
        "{err}"
    );
}

/// `--batch-size`: images denoised as one UNet batch come out as they do one at a time (each
/// from its own seed, with its own ancestral noise: euler-a), in whole batches and a remainder.
#[test]
fn batched_images_equal_one_at_a_time() {
    let dir = consistentid_folder();
    let images = |batch: &str| -> Vec<Vec<u8>> {
        let out = dir.path().join(format!("batch-{batch}"));
        let args = face_args(
            dir.path(),
            &out,
            &[
                "--steps",
                "3",
                "--merge-step",
                "1",
                "--scheduler",
                "euler-a",
                "--seed",
                "11",
                "--num-images",
                "3",
                "--batch-size",
                batch,
            ],
        );
        let o = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ["11-0.png", "12-1.png", "13-2.png"]
            .iter()
            .map(|name| png_pixels(&out.join(name)))
            .collect()
    };
    let one_by_one = images("1");
    assert_ne!(
        one_by_one[0], one_by_one[1],
        "different seeds, different images"
    );
    for batch in ["3", "2"] {
        let batched = images(batch);
        for (k, (a, b)) in batched.iter().zip(&one_by_one).enumerate() {
            let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max();
            assert!(
                worst <= Some(1),
                "batch {batch}, image {k}: pixels differ by {worst:?}"
            );
        }
    }
}

/// `generate --face` on the tiny replica folder, "an astronaut" at 48×64, into `out`, then
/// `extra`.
fn face_args(folder: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let size = ["--width", "48", "--height", "64"];
    common::face_args(folder, out, "an astronaut", &[&size[..], extra].concat())
}
