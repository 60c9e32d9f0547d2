//! Helpers shared by the CLI tests: the binary, fixtures, the real-data cache, and the
//! one-line error check.
#![allow(dead_code)]

pub mod bucket;
pub mod host;
pub mod hostile;
pub mod openapi;
pub mod pgserver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use consistentid_core::tensor_io::TensorFile;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_consistentid"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// Runs one of `scripts/` (a test server's start or stop) and returns what it printed.
pub fn script(name: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    let out = Command::new("bash").arg(path).args(args).output().unwrap();
    assert!(out.status.success(), "{name} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

/// A copy of a fixture model folder that a test may damage.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(name), tmp.path());
    tmp
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs a stage that must fail; returns its single stderr line.
pub fn expect_error(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code for {args:?}; stderr: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The real-data cache (tests/scripts/fetch_real_data.sh).
pub fn real_data(rel: &str) -> PathBuf {
    let root = std::env::var_os("CONSISTENTID_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/consistentid/real-data")
        });
    let path = root.join(rel);
    assert!(
        path.exists(),
        "{} missing: run tests/scripts/fetch_real_data.sh",
        path.display()
    );
    path
}

/// A model folder for `generate --face`: sd_tiny plus the tiny pipeline replica's image
/// encoder, ConsistentID checkpoint and BiSeNet.
pub fn consistentid_folder() -> tempfile::TempDir {
    let tmp = copy_fixture("sd_tiny");
    copy_dir(
        &fixture("consistentid_pipeline/image_encoder"),
        &tmp.path().join("image_encoder"),
    );
    for (from, to) in [
        (
            "consistentid_pipeline/ConsistentID-v1.bin",
            "ConsistentID-v1.bin",
        ),
        ("bisenet_tiny/face_parsing.pth", "face_parsing.pth"),
    ] {
        std::fs::copy(fixture(from), tmp.path().join(to)).unwrap();
    }
    tmp
}

/// The tiny pipeline replica's stored identity as 512 numbers.
pub fn id_embedding() -> Vec<f32> {
    let bytes = std::fs::read(fixture("consistentid_pipeline/expected.safetensors")).unwrap();
    TensorFile::parse("expected", &bytes)
        .unwrap()
        .f32("id_embedding")
        .unwrap()
        .0
}

/// `generate` with the model `model` and `prompt` (no face), then `extra`; run it with
/// [`run_args`] or [`expect_error_args`].
pub fn sd_args(model: &Path, prompt: &str, extra: &[&str]) -> Vec<String> {
    let base = [
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        prompt,
    ];
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

/// The tiny replica folder, the astronaut's photo and the stored identity, and `prompt`.
fn replica_inputs(folder: &Path, prompt: &str) -> Vec<String> {
    let expected = fixture("consistentid_pipeline/expected.safetensors");
    let face = real_data("images/astronaut.png");
    [
        "--model",
        folder.to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--id-embedding",
        expected.to_str().unwrap(),
        "--prompt",
        prompt,
    ]
    .map(String::from)
    .to_vec()
}

/// `generate --face` on the tiny replica folder with its stored identity and the astronaut's
/// photo, `prompt` into `out`, then `extra`.
pub fn face_args(folder: &Path, out: &Path, prompt: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["generate".to_string()];
    args.extend(replica_inputs(folder, prompt));
    args.extend(["--out", out.to_str().unwrap()].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Runs the binary with owned arguments.
pub fn run_args(args: &[String]) -> Output {
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// [`expect_error`] with owned arguments.
pub fn expect_error_args(args: &[String]) -> String {
    expect_error(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The inputs of the tiny pipeline replica (`consistentid_pipeline/`) for its stages: the folder,
/// the face, the stored ArcFace embedding, its prompts, and `--out`.
pub fn replica_args(folder: &Path, out: &Path) -> Vec<String> {
    let mut args = replica_inputs(
        folder,
        "a photo of a person as an astronaut, highly detailed",
    );
    args.extend(
        [
            "--negative-prompt",
            "blurry, lowres",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from),
    );
    args
}

/// The replica's denoising settings and starting latents, for `stage consistentid`.
pub fn replica_denoise_args() -> Vec<String> {
    let expected = fixture("consistentid_pipeline/expected.safetensors");
    [
        "--steps",
        "5",
        "--guidance",
        "5",
        "--merge-step",
        "2",
        "--init-latents",
        expected.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// Runs the whole tiny replica (`stage consistentid`) with `--device device --dtype dtype`
/// and returns its image next to the reference's (official pipeline, f32).
pub fn replica_image(device: &str, dtype: &str) -> (Vec<f32>, Vec<f32>) {
    let (got, want, _) = replica_run(device, dtype);
    (got, want)
}

/// [`replica_image`], with what the command printed on stderr, run as on a headless machine
/// (no `XDG_RUNTIME_DIR`).
pub fn replica_run(device: &str, dtype: &str) -> (Vec<f32>, Vec<f32>, String) {
    let dir = consistentid_folder();
    let (got, stderr) = replica_image_in(dir.path(), device, dtype);
    let want_bytes = std::fs::read(fixture("consistentid_pipeline/expected.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes)
        .unwrap()
        .f32("image")
        .unwrap()
        .0;
    (got, want, stderr)
}

/// The replica's image (`stage consistentid` with its inputs) from the model folder `dir`, and
/// what the command printed on stderr.
pub fn replica_image_in(dir: &Path, device: &str, dtype: &str) -> (Vec<f32>, String) {
    let out = dir.join("o.safetensors");
    let args = [
        [
            "--device",
            device,
            "--dtype",
            dtype,
            "stage",
            "consistentid",
        ]
        .map(String::from)
        .to_vec(),
        replica_args(dir, &out),
        replica_denoise_args(),
    ]
    .concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = bin()
        .env_remove("XDG_RUNTIME_DIR")
        .args(&args)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "{stderr}\n(on wgpu: no Vulkan adapter? install mesa-vulkan-drivers)"
    );
    let got = TensorFile::parse("o", &read_out(&out))
        .unwrap()
        .f32("image")
        .unwrap()
        .0;
    (got, stderr)
}

/// The largest absolute difference.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A PNG's decoded pixels.
pub fn png_pixels(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

/// A PNG's size and its `parameters` text (iTXt, UTF-8).
pub fn png_parameters(path: &Path) -> ((u32, u32), String) {
    let file = std::fs::File::open(path).unwrap();
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let info = reader.info();
    let text = info
        .utf8_text
        .iter()
        .find(|t| t.keyword == "parameters")
        .unwrap_or_else(|| panic!("{}: no parameters iTXt chunk", path.display()))
        .get_text()
        .unwrap();
    ((info.width, info.height), text)
}

pub fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    let diff: f32 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    (diff / want.iter().map(|b| b * b).sum::<f32>()).sqrt()
}

pub fn read_out(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("the stage wrote its output")
}
