//! What a person meets on the first day: Unicode everywhere, reserved markers, long prompts,
//! numbers out of range, hostile images, output files that already exist. Every refusal is a
//! one-line error before anything is loaded or computed; nothing is overwritten or left half
//! written.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use consistentid_core::tensor_io::{NamedTensor, to_safetensors};

/// `generate` on the tiny SD folder with `extra` flags.
fn txt2img(out: &Path, extra: &[&str]) -> std::process::Output {
    let model = fixture("sd_tiny");
    let mut args = vec![
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--steps",
        "2",
        "--width",
        "16",
        "--height",
        "16",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn unicode_prompts_and_folders_are_kept_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("résultats ✓");
    let prompt = "a woman’s portrait, 日本の庭園, ✨";
    let o = txt2img(
        &out,
        &[
            "--prompt",
            prompt,
            "--negative-prompt",
            "flou, übel",
            "--seed",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, params) = png_parameters(&out.join("3-0.png"));
    assert!(
        params.starts_with(&format!("{prompt}\nNegative prompt: flou, übel\n")),
        "{params}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn numbers_out_of_range_are_refused_before_loading_anything() {
    // The model folder does not exist: a refusal that names the flag proves the request was
    // checked before any file was touched.
    let missing = "/nonexistent/model";
    let base = ["generate", "--model", missing, "--prompt", "x"];
    let cases: &[(&[&str], &str)] = &[
        (
            &["--width", "100000"],
            "--width must be a multiple of 8 from 8 to 2048 (got 100000)",
        ),
        (&["--height", "8192"], "--height must be a multiple of 8"),
        (&["--width", "20"], "--width must be a multiple of 8"),
        (
            &["--guidance", "NaN"],
            "--guidance must be a number from 0 to 50 (got NaN)",
        ),
        (&["--guidance", "inf"], "--guidance must be a number"),
        (
            &["--steps", "2000"],
            "--steps must be from 1 to 1000 (got 2000)",
        ),
        (&["--steps", "0"], "--steps must be from 1 to 1000"),
        (&["--num-images", "0"], "--num-images must be from 1 to 16"),
        (
            &["--num-images", "1000"],
            "--num-images must be from 1 to 16",
        ),
        (&["--style", "Cinematic"], "--style styles need a face"),
    ];
    for (extra, want) in cases {
        let err = expect_error(&[&base[..], extra].concat());
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(!err.contains("model folder"), "{extra:?}: {err}");
    }
    // Every problem at once, in one line.
    let err = expect_error(
        &[
            &base[..],
            &["--width", "7", "--steps", "0", "--guidance=-1"],
        ]
        .concat(),
    );
    assert!(
        err.contains("--width") && err.contains("--steps") && err.contains("--guidance"),
        "{err}"
    );
    let long = "word ".repeat(1000);
    let err = expect_error(&[&base[..], &["--negative-prompt", &long]].concat());
    assert!(
        err.contains("--negative-prompt is 5000 characters long"),
        "{err}"
    );
}

#[test]
fn long_prompts_warn_with_the_words_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let words: Vec<String> = (0..90).map(|i| format!("w{i}")).collect();
    let prompt = format!("{} zebra giraffe", words.join(" "));
    let o = txt2img(tmp.path(), &["--prompt", &prompt, "--seed", "1"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("longer than CLIP's 77 tokens") && err.contains("zebra giraffe\""),
        "{err}"
    );
    // A prompt that fits says nothing.
    let o = txt2img(tmp.path(), &["--prompt", "a cat", "--seed", "1"]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn existing_images_are_not_overwritten_unless_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    for _ in 0..2 {
        let o = txt2img(out, &["--prompt", "a cat", "--seed", "5"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(out.join("5-0.png").exists() && out.join("5-0-1.png").exists());
    let o = txt2img(out, &["--prompt", "a dog", "--seed", "5", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_, params) = png_parameters(&out.join("5-0.png"));
    assert!(params.starts_with("a dog"), "{params}");
    assert!(!out.join("5-0-2.png").exists());
}

#[test]
fn the_face_photo_is_never_written_over() {
    let dir = consistentid_folder();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The photo carries the name the first output would get.
    let face = out.join("7-0.png");
    std::fs::copy(real_data("images/astronaut.png"), &face).unwrap();
    let before = std::fs::read(&face).unwrap();
    let id = fixture("consistentid_pipeline/expected.safetensors");
    let o = run(&[
        "generate",
        "--model",
        dir.path().to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--id-embedding",
        id.to_str().unwrap(),
        "--prompt",
        "an <|image|> astronaut <|facial|>",
        "--steps",
        "1",
        "--width",
        "16",
        "--height",
        "16",
        "--seed",
        "7",
        "--overwrite",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // Typed markers are removed with a warning (they used to crash the pipeline).
    assert!(err.contains("reserved"), "{err}");
    assert_eq!(
        std::fs::read(&face).unwrap(),
        before,
        "the input was replaced"
    );
    let (_, params) = png_parameters(&out.join("7-0-1.png"));
    assert!(params.contains("an  astronaut"), "{params}");
}

/// Writes an RGB or 1-bit PNG of the given size (a header promising many pixels compresses
/// to almost nothing).
fn png_of(path: &Path, w: u32, h: u32) -> PathBuf {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    let mut writer = enc.write_header().unwrap();
    let row = (w as usize).div_ceil(8);
    writer
        .write_image_data(&vec![0u8; row * h as usize])
        .unwrap();
    writer.finish().unwrap();
    path.to_path_buf()
}

#[test]
fn hostile_images_and_inputs_are_refused_before_compute() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let model = dir.path().to_str().unwrap().to_string();
    let refuse = |face: &Path, extra: &[&str]| {
        let mut a = vec![
            "generate".to_string(),
            "--model".into(),
            model.clone(),
            "--face".into(),
            face.to_str().unwrap().into(),
            "--prompt".into(),
            "x".into(),
            "--out".into(),
            tmp.path().join("out").to_str().unwrap().into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        expect_error(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let thin = png_of(&tmp.path().join("thin.png"), 8192, 1);
    assert!(std::fs::metadata(&thin).unwrap().len() < 200);
    let err = refuse(&thin, &[]);
    assert!(
        err.contains("bad image") && err.contains("8192x1") && err.contains("20:1"),
        "{err}"
    );
    let bomb = png_of(&tmp.path().join("bomb.png"), 8000, 7000);
    let err = refuse(&bomb, &[]);
    assert!(err.contains("more than 50 megapixels"), "{err}");
    let fake = tmp.path().join("notes.jpg");
    std::fs::write(&fake, "just text").unwrap();
    let err = refuse(&fake, &[]);
    assert!(
        err.contains("bad image") && err.contains("notes.jpg"),
        "{err}"
    );

    // A NaN identity embedding.
    let face = real_data("images/astronaut.png");
    let nan = tmp.path().join("nan.safetensors");
    let mut values = vec![0.0f32; 512];
    values[3] = f32::NAN;
    let tensor = NamedTensor::from_f32("id_embedding", vec![1, 512], &values);
    std::fs::write(&nan, to_safetensors(&[tensor], None).unwrap()).unwrap();
    let err = refuse(&face, &["--id-embedding", nan.to_str().unwrap()]);
    assert!(err.contains("id_embedding") && err.contains("NaN"), "{err}");

    // An output folder that cannot be made (a file is in the way).
    let blocked = tmp.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    let o = run(&[
        "generate",
        "--model",
        &model,
        "--face",
        face.to_str().unwrap(),
        "--prompt",
        "x",
        "--out",
        blocked.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        err.contains("output folder") && err.contains("blocked"),
        "{err}"
    );

    // A picture given as the model.
    let err = expect_error(&[
        "generate",
        "--model",
        face.to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert!(
        err.contains("is not a model folder or a .safetensors checkpoint"),
        "{err}"
    );
}
