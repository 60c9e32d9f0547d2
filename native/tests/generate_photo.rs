//! `consistentid generate` with a photo to start from: inpainting the face photo as the official
//! inpainting pipeline (`--face --mask`), inpainting and image-to-image with plain SD
//! (`--image [--mask]`), the default size from the photo, and every bad photo input refused in
//! one line before the models load. The numbers are the parity test's
//! (tests/tests/parity_inpaint.rs); here the command line around them.

mod common;
#[path = "photo/into.rs"]
mod into;

use std::path::{Path, PathBuf};

use common::*;

fn png_of(dir: &Path, name: &str, w: u32, h: u32, white: impl Fn(u32, u32) -> bool) -> PathBuf {
    let path = dir.join(name);
    image::RgbImage::from_fn(w, h, |x, y| {
        if white(x, y) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    })
    .save(&path)
    .unwrap();
    path
}

/// `generate --face` on the tiny replica, at 48×64, 5 steps, seed 3, then `extra`.
fn face_args(folder: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let settings = [
        "--width", "48", "--height", "64", "--steps", "5", "--seed", "3",
    ];
    common::face_args(
        folder,
        out,
        "an astronaut",
        &[&settings[..], extra].concat(),
    )
}

#[test]
fn inpainting_the_face_photo_is_reproducible_and_says_so_in_the_png() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let mask = png_of(tmp.path(), "mask.png", 512, 512, |x, y| {
        (150..360).contains(&x) && (60..300).contains(&y)
    });
    let mut pngs = Vec::new();
    for run_dir in ["a", "b"] {
        let out = tmp.path().join(run_dir);
        let args = face_args(
            dir.path(),
            &out,
            &["--mask", mask.to_str().unwrap(), "--strength", "0.6"],
        );
        let o = run_args(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (size, text) = png_parameters(&out.join("3-0.png"));
        assert_eq!(size, (48, 64));
        assert!(
            text.contains("Init image: astronaut.png, Mask: mask.png, Denoising strength: 0.6"),
            "{text}"
        );
        pngs.push(png_pixels(&out.join("3-0.png")));
    }
    assert_eq!(pngs[0], pngs[1], "the same seed gives the same inpainting");
    // Two images in one UNet batch come out as they do one at a time.
    let mut batches = Vec::new();
    for size in ["1", "2"] {
        let out = tmp.path().join(format!("batch-{size}"));
        let extra = [
            "--mask",
            mask.to_str().unwrap(),
            "--strength",
            "0.6",
            "--num-images",
            "2",
        ];
        let args = face_args(
            dir.path(),
            &out,
            &[&extra[..], &["--batch-size", size]].concat(),
        );
        let o = run_args(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        batches.push([
            png_pixels(&out.join("3-0.png")),
            png_pixels(&out.join("4-1.png")),
        ]);
    }
    assert_eq!(batches[0], batches[1], "batched inpainting differs");
    assert_eq!(batches[0][0], pngs[0]);
    // A mask of another size is resized on its own, with a note.
    let small = png_of(tmp.path(), "small.png", 256, 256, |x, y| {
        (75..180).contains(&x) && (30..150).contains(&y)
    });
    let args = face_args(
        dir.path(),
        &tmp.path().join("c"),
        &["--mask", small.to_str().unwrap()],
    );
    let o = run_args(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("the mask is 256×256 and the photo 512×512"),
        "{stderr}"
    );
    // Without a photo the same seed draws another image.
    let out = tmp.path().join("plain");
    let args = face_args(dir.path(), &out, &[]);
    assert!(run_args(&args).status.success());
    assert_ne!(png_pixels(&out.join("3-0.png")), pngs[0]);
}

#[test]
fn image_to_image_takes_its_size_from_the_photo() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = png_of(tmp.path(), "photo.png", 100, 60, |x, _| x < 50);
    let out = tmp.path().join("out");
    let (p, o) = (photo.to_str().unwrap(), out.to_str().unwrap());
    let args = ["--image", p, "--steps", "4", "--seed", "1", "--out", o];
    let o = run_args(&sd_args(&fixture("sd_tiny"), "a wall", &args));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (size, text) = png_parameters(&out.join("1-0.png"));
    assert_eq!(size, (96, 56), "the photo's aspect, multiples of 8");
    assert!(
        text.contains("Init image: photo.png, Denoising strength: 0.8"),
        "{text}"
    );
}

#[test]
fn bad_photo_inputs_are_refused_in_one_line() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mask = png_of(tmp.path(), "mask.png", 64, 64, |x, _| x > 30);
    let black = png_of(tmp.path(), "black.png", 64, 64, |_, _| false);
    let (m, b) = (mask.to_str().unwrap(), black.to_str().unwrap());
    for (extra, want) in [
        (
            vec!["--mask", m, "--strength", "0"],
            "--strength must be in (0, 1] (got 0)",
        ),
        (
            vec!["--mask", m, "--strength", "1.5"],
            "--strength must be in (0, 1]",
        ),
        (vec!["--mask", m, "--strength", "0.1"], "no step at all"),
        (vec!["--mask", b], "--mask is black everywhere"),
        (
            vec!["--strength", "0.5"],
            "--strength needs --image or --mask",
        ),
    ] {
        let args = face_args(dir.path(), &out, &extra);
        let err = expect_error_args(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(!out.exists(), "nothing was written");
    let err = expect_error_args(&sd_args(&fixture("sd_tiny"), "x", &["--mask", m]));
    assert!(err.contains("--mask needs --image"), "{err}");

    // An inpainting UNet (9 input channels) without a mask.
    let nine = copy_fixture("sd_tiny");
    std::fs::remove_dir_all(nine.path().join("unet")).unwrap();
    copy_dir(
        &fixture("inpaint_pipeline/unet9"),
        &nine.path().join("unet"),
    );
    let o = out.to_str().unwrap();
    let err = expect_error_args(&sd_args(nine.path(), "x", &["--image", m, "--out", o]));
    assert!(
        err.contains("--mask is needed: this is an inpainting UNet (9 input channels)"),
        "{err}"
    );
    // With a mask it inpaints.
    let args = ["--image", m, "--mask", m, "--steps", "2", "--out", o];
    let done = run_args(&sd_args(nine.path(), "x", &args));
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[test]
fn a_controlnet_guides_the_inpainting_and_is_named_in_the_png() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let mask = png_of(tmp.path(), "mask.png", 512, 512, |x, y| {
        (150..360).contains(&x) && (60..300).contains(&y)
    });
    let controlnet = fixture("controlnet_tiny/controlnet");
    let (m, c) = (mask.to_str().unwrap(), controlnet.to_str().unwrap());
    let draw = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let args = face_args(dir.path(), &out, &[&["--mask", m][..], extra].concat());
        let o = run_args(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (_, text) = png_parameters(&out.join("3-0.png"));
        (png_pixels(&out.join("3-0.png")), text)
    };
    let (plain, _) = draw("plain", &[]);
    let (guided, text) = draw(
        "guided",
        &[
            "--controlnet",
            c,
            "--control",
            "canny",
            "--control-scale",
            "0.8",
        ],
    );
    assert!(
        text.contains("ControlNet: controlnet (weight 0.8, 0–1)"),
        "{text}"
    );
    assert_ne!(plain, guided, "the ControlNet changes the image");
    // Outside its window (the last step only at 0.9–1 of 5 steps: none) it changes nothing.
    let (idle, _) = draw(
        "idle",
        &[
            "--controlnet",
            c,
            "--control",
            "canny",
            "--control-start",
            "0.9",
        ],
    );
    assert_eq!(plain, idle);

    let out = tmp.path().join("bad");
    for (extra, want) in [
        (vec!["--control", "canny"], "need --controlnet"),
        (vec!["--controlnet", c], "one control image"),
        (
            vec![
                "--controlnet",
                c,
                "--control",
                "canny",
                "--control-scale=-1",
            ],
            "--control-scale must be from 0",
        ),
        (
            vec![
                "--controlnet",
                c,
                "--control",
                "canny",
                "--control-start",
                "0.5",
                "--control-end",
                "0.5",
            ],
            "0 ≤ start < end ≤ 1",
        ),
        (
            vec!["--controlnet", m, "--control", "canny"],
            "not a ControlNet folder",
        ),
    ] {
        let args = face_args(dir.path(), &out, &[&["--mask", m][..], &extra[..]].concat());
        let err = expect_error_args(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    // Without a photo there is nothing for the official ControlNet pipeline to inpaint.
    let args = face_args(dir.path(), &out, &["--controlnet", c, "--control", "canny"]);
    assert!(expect_error_args(&args).contains("--controlnet needs --image, --mask or --into"));
}

/// A single-file inpainting checkpoint is read with 9 input channels: found in its safetensors
/// header without reading the weights.
#[test]
fn single_file_inpainting_checkpoints_are_recognised() {
    let tmp = tempfile::tempdir().unwrap();
    let header = br#"{"model.diffusion_model.input_blocks.0.0.weight":{"dtype":"F32","shape":[2,9,1,1],"data_offsets":[0,72]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 72]);
    let path = tmp.path().join("inpainting.safetensors");
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        consistentid_native::commands::generate::single_file_in_channels(&path).unwrap(),
        Some(9)
    );
    let plain = fixture("sd_tiny_single_file.safetensors");
    assert_eq!(
        consistentid_native::commands::generate::single_file_in_channels(&plain).unwrap(),
        Some(4)
    );
}
