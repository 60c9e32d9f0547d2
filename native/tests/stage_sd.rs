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

/// An sd_tiny txt2img case (tests/scripts/gen_txt2img.py): name, prompt, negative prompt,
/// steps, guidance, scheduler.
type Txt2ImgCase = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);

const TXT2IMG_CASES: [Txt2ImgCase; 2] = [
    (
        "euler",
        "a photo of a cat, 4k",
        Some("blurry, lowres"),
        "4",
        "7.5",
        "euler",
    ),
    ("ddim", "portrait of a woman", None, "3", "5.0", "ddim"),
];

/// Runs `stage txt2img` on sd_tiny for one case, with `--dtype dtype`; returns the image.
fn txt2img_stage(case: usize, dtype: &str) -> (Vec<f32>, Vec<usize>) {
    let (name, prompt, negative, steps, guidance, scheduler) = TXT2IMG_CASES[case];
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let want_bytes = std::fs::read(model.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &want_bytes).unwrap();
    let (init, shape) = want.f32(&format!("{name}.init_latents")).unwrap();
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
    let mut args = vec![
        "--dtype",
        dtype,
        "stage",
        "txt2img",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--prompt",
        prompt,
        "--steps",
        steps,
        "--guidance",
        guidance,
        "--scheduler",
        scheduler,
        "--out",
        out_path.to_str().unwrap(),
    ];
    if let Some(negative) = negative {
        args.extend(["--negative-prompt", negative]);
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    TensorFile::parse("out", &bytes)
        .unwrap()
        .f32("image")
        .unwrap()
}

#[test]
fn txt2img_stage_matches_diffusers() {
    let (got, gshape) = txt2img_stage(0, "f32");
    let want_bytes = std::fs::read(fixture("sd_tiny").join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &want_bytes).unwrap();
    let (w, wshape) = want.f32("euler.image").unwrap();
    assert_eq!(gshape, wshape);
    assert!(rel_err(&got, &w) <= 1e-3);
}

/// The loop with every network in f16 / bf16 against diffusers with `torch_dtype=float16` /
/// `bfloat16` (tests/scripts/gen_txt2img_fp16.py). Tolerances are max-abs on images in [0, 1]:
/// diffusers' own half images are up to 2.4e-3 (f16) and 2.6e-2 (bf16) from its f32 ones, and
/// ours measured 1.8–2.2e-3 (f16) and 1.5–1.7e-2 (bf16) from diffusers' (we keep the latents and
/// the scheduler in f32 between steps, as its Euler does but its DDIM does not). The image must
/// also differ from the f32 one: the networks ran in half precision.
#[test]
fn txt2img_stage_in_half_precision_matches_diffusers_half() {
    let half_bytes = std::fs::read(fixture("sd_tiny").join("half.safetensors")).unwrap();
    let half = TensorFile::parse("half", &half_bytes).unwrap();
    for (dtype, tolerance) in [("f16", 4e-3), ("bf16", 3e-2)] {
        for (case, (name, ..)) in TXT2IMG_CASES.iter().enumerate() {
            let (got, _) = txt2img_stage(case, dtype);
            let (want, _) = half.f32(&format!("{name}.{dtype}.image")).unwrap();
            let (f32_image, _) = half.f32(&format!("{name}.f32.image")).unwrap();
            let err = max_abs(&got, &want);
            assert!(
                err <= tolerance,
                "{name} {dtype}: max |ours - diffusers| = {err}"
            );
            assert!(
                max_abs(&got, &f32_image) > 0.0,
                "{name} {dtype}: ran in f32"
            );
        }
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
