//! `generate --face me --into photo`: the identity put into a given photo. The result keeps the
//! photo's (upright) size, every pixel outside the crop named in the PNG is the photo's own bit
//! for bit, at odd sizes and under an EXIF rotation; the automatic mask finds the target face
//! with the detector and BiSeNet; the refusals come before any compute.

use std::path::{Path, PathBuf};

use super::common::*;
use consistentid_native::io::image::decode;

/// A JPEG of `img` whose EXIF says to turn it 90° clockwise (orientation 6).
fn rotated_jpeg(img: &image::RgbImage, path: &Path) {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(img)
        .unwrap();
    // APP1: "Exif\0\0", a big-endian TIFF header, one IFD entry (0x0112 SHORT 1 = 6).
    let tiff: &[u8] = &[
        b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0,
    ];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(tiff);
    let len = (app1.len() + 2) as u16;
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    std::fs::write(path, out).unwrap();
}

fn into_args(folder: &Path, into: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let into = into.to_str().unwrap();
    let settings = [
        "--into",
        into,
        "--width",
        "48",
        "--steps",
        "3",
        "--seed",
        "5",
        "--merge-step",
        "1",
    ];
    face_args(folder, out, "a portrait", &[&settings[..], extra].concat())
}

/// The crop `S×S at x,y` the PNG parameters name.
fn crop_of(text: &str) -> (usize, usize, usize) {
    let at = text
        .find("crop ")
        .map(|i| &text[i + 5..])
        .unwrap_or_else(|| panic!("{text}"));
    let side: usize = at.split('×').next().unwrap().parse().unwrap();
    let xy = at.split(" at ").nth(1).unwrap();
    let xy: Vec<usize> = xy
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().unwrap())
        .collect();
    (side, xy[0], xy[1])
}

/// Every pixel of `got` outside the square equals `photo`'s; some inside differ.
fn only_the_crop_changed(
    got: &[u8],
    photo: &[u8],
    width: usize,
    (side, x0, y0): (usize, usize, usize),
) {
    assert_eq!(got.len(), photo.len(), "the photo's size");
    let mut inside_changed = 0;
    for (i, (a, b)) in got.chunks(3).zip(photo.chunks(3)).enumerate() {
        let (x, y) = (i % width, i / width);
        let inside = (x0..x0 + side).contains(&x) && (y0..y0 + side).contains(&y);
        if !inside {
            assert_eq!(a, b, "pixel ({x}, {y}) outside the crop changed");
        } else if a != b {
            inside_changed += 1;
        }
    }
    assert!(inside_changed > 0, "nothing was repainted");
}

#[test]
fn a_given_mask_repaints_only_its_crop_at_odd_sizes_and_under_exif_rotation() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let astronaut = image::open(real_data("images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    // An odd-sized photo (stored 203×301, shown 301×203 after the EXIF turn).
    let stored = image::imageops::crop_imm(&astronaut, 100, 50, 203, 301).to_image();
    let photo = tmp.path().join("photo.jpg");
    rotated_jpeg(&stored, &photo);
    let upright = decode(&std::fs::read(&photo).unwrap(), "photo.jpg").unwrap();
    assert_eq!((upright.width, upright.height), (301, 203));
    // A mask of the upright photo's size: a patch near its right edge.
    let mask = image::RgbImage::from_fn(301, 203, |x, y| {
        if (250..290).contains(&x) && (60..100).contains(&y) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    });
    let mask_path = tmp.path().join("mask.png");
    mask.save(&mask_path).unwrap();
    let out = tmp.path().join("out");
    let args = into_args(
        dir.path(),
        &photo,
        &out,
        &[
            "--mask",
            mask_path.to_str().unwrap(),
            "--crop-margin",
            "0.2",
        ],
    );
    let o = run_args(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let result: PathBuf = out.join("5-0.png");
    let (size, text) = png_parameters(&result);
    assert_eq!(size, (301, 203), "the upright photo's size");
    assert!(
        text.contains("Init image: photo.jpg, Mask: given"),
        "{text}"
    );
    // The mask's 40-pixel square plus 20 % on each side (56), centred on it.
    assert_eq!(crop_of(&text), (56, 242, 52), "{text}");
    let got = png_pixels(&result);
    only_the_crop_changed(&got, &upright.data, 301, (56, 242, 52));
    // Inside the crop but outside the mask, too.
    for (i, (a, b)) in got.chunks(3).zip(upright.data.chunks(3)).enumerate() {
        let (x, y) = (i % 301, i / 301);
        if !((250..290).contains(&x) && (60..100).contains(&y)) {
            assert_eq!(a, b, "pixel ({x}, {y}) outside the mask changed");
        }
    }
}

#[test]
fn the_automatic_mask_finds_the_target_face() {
    let dir = consistentid_folder();
    for (from, to) in [
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
    ] {
        std::fs::copy(fixture(from), dir.path().join(to)).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let astronaut = image::open(real_data("images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let target = tmp.path().join("target.png");
    image::imageops::crop_imm(&astronaut, 31, 7, 457, 389)
        .to_image()
        .save(&target)
        .unwrap();
    let photo = decode(&std::fs::read(&target).unwrap(), "target.png").unwrap();
    let out = tmp.path().join("out");
    let args = into_args(dir.path(), &target, &out, &["--regions", "face,hair"]);
    let o = run_args(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (size, text) = png_parameters(&out.join("5-0.png"));
    assert_eq!(size, (457, 389));
    assert!(
        text.contains("Mask: automatic (face+hair), crop "),
        "{text}"
    );
    let crop = crop_of(&text);
    assert!(
        crop.0 <= 389 && crop.1 + crop.0 <= 457 && crop.2 + crop.0 <= 389,
        "{crop:?}"
    );
    only_the_crop_changed(&png_pixels(&out.join("5-0.png")), &photo.data, 457, crop);
}

#[test]
fn into_refusals_come_before_any_compute() {
    let dir = consistentid_folder();
    let tmp = tempfile::tempdir().unwrap();
    let target = real_data("images/grace_hopper.jpg");
    let out = tmp.path().join("out");
    // No detector in the folder and no mask.
    let args = into_args(dir.path(), &target, &out, &[]);
    let err = expect_error_args(&args);
    assert!(
        err.contains("buffalo_l detector") && err.contains("--mask"),
        "{err}"
    );
    // A mask of another size.
    let small = tmp.path().join("small.png");
    image::RgbImage::from_pixel(10, 10, image::Rgb([255, 255, 255]))
        .save(&small)
        .unwrap();
    let args = into_args(
        dir.path(),
        &target,
        &out,
        &["--mask", small.to_str().unwrap()],
    );
    let err = expect_error_args(&args);
    assert!(err.contains("must have the photo's size"), "{err}");
    // Not square.
    let args = into_args(dir.path(), &target, &out, &["--height", "64"]);
    let err = expect_error_args(&args);
    assert!(err.contains("square crop"), "{err}");
    assert!(!out.exists(), "nothing was written");
}
