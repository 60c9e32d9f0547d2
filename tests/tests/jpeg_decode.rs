//! JPEG decoding equals Pillow's (libjpeg-turbo: islow IDCT, fancy upsampling), bit for bit,
//! on files Pillow wrote in every common layout and on the real grace_hopper.jpg; truncated
//! files are refused. Fixtures: tests/scripts/gen_jpeg.py.

use consistentid_core::image::RgbImage;
use consistentid_native::io::image::decode;
use consistentid_tests::{fixture, real_data};

fn png(name: &str) -> RgbImage {
    let path = fixture(&format!("jpeg/{name}.png"));
    consistentid_core::image::decode(&std::fs::read(&path).unwrap(), name).unwrap()
}

fn assert_same(name: &str, got: &RgbImage, want: &RgbImage) {
    assert_eq!(
        (got.width, got.height),
        (want.width, want.height),
        "{name}: size"
    );
    let differing = got
        .data
        .iter()
        .zip(&want.data)
        .filter(|(a, b)| a != b)
        .count();
    let worst = got
        .data
        .iter()
        .zip(&want.data)
        .map(|(&a, &b)| (i16::from(a) - i16::from(b)).abs())
        .max()
        .unwrap_or(0);
    assert_eq!(
        differing,
        0,
        "{name}: {differing} of {} values differ from Pillow (up to {worst})",
        want.data.len()
    );
}

#[test]
fn jpegs_written_by_pillow_decode_as_pillow_decodes_them() {
    let mut names: Vec<String> = ["s444", "s422", "s420", "progressive", "gray", "cmyk"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend((2..=8).map(|o| format!("exif{o}")));
    for name in &names {
        let bytes = std::fs::read(fixture(&format!("jpeg/{name}.jpg"))).unwrap();
        let got = decode(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_same(name, &got, &png(name));
    }
}

#[test]
fn grace_hopper_decodes_as_pillow_decodes_it() {
    let bytes = std::fs::read(real_data("images/grace_hopper.jpg")).unwrap();
    let got = decode(&bytes, "grace_hopper.jpg").unwrap();
    assert_same("grace_hopper.jpg", &got, &png("grace_hopper"));
}

#[test]
fn a_truncated_jpeg_is_an_error() {
    let bytes = std::fs::read(fixture("jpeg/truncated.jpg")).unwrap();
    let err = decode(&bytes, "truncated.jpg").unwrap_err().to_string();
    assert!(
        err.starts_with("bad image `truncated.jpg`") && err.contains("truncated"),
        "{err}"
    );
}
