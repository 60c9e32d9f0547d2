//! Control images made for the user, against the code that makes them upstream: Canny edges
//! equal to OpenCV 4.8.1's `cv2.Canny` on the RGB array, as the official ControlNet demo calls
//! it (tests/scripts/gen_canny.py), pixel for pixel.

use consistentid_core::image::RgbImage;
use consistentid_core::image::canny::canny;
use consistentid_core::image::pil::{Filter, resize};
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_tests::{fixture, real_data};

fn unpack(bits: &[i64], width: usize, height: usize) -> Vec<u8> {
    let row = width.div_ceil(8);
    (0..height * width)
        .map(|i| {
            let (y, x) = (i / width, i % width);
            let byte = bits[y * row + x / 8] as u8;
            if byte & (0x80 >> (x % 8)) != 0 {
                255
            } else {
                0
            }
        })
        .collect()
}

#[test]
fn canny_equals_opencv() {
    let bytes = std::fs::read(fixture("canny/expected.safetensors")).unwrap();
    let want = TensorFile::parse("canny", &bytes).unwrap();
    let photo = |rel: &str| decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap();
    let (rgb, shape) = want.i64("synthetic.rgb").unwrap();
    let synthetic =
        RgbImage::from_raw(shape[1], shape[0], rgb.iter().map(|&v| v as u8).collect()).unwrap();
    let grace = resize(&photo("images/grace_hopper.jpg"), 512, 512, Filter::Bicubic);
    for (case, img) in [
        ("synthetic", synthetic),
        ("astronaut", photo("images/astronaut.png")),
        ("grace_hopper", grace),
    ] {
        for (low, high) in [(100.0, 200.0), (30.0, 90.0)] {
            let name = format!("{case}_{low}_{high}");
            let (dims, _) = want.i64(&format!("{name}.shape")).unwrap();
            let (bits, _) = want.i64(&format!("{name}.edges")).unwrap();
            let expected = unpack(&bits, dims[1] as usize, dims[0] as usize);
            let got = canny(&img, low, high);
            let differ = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{name}: {differ} pixels differ from cv2.Canny");
        }
    }
}

/// The inpainting pipelines' inputs: diffusers 0.23's `VaeImageProcessor` (Pillow LANCZOS, the
/// image in [-1, 1], the mask grey and binarised) on the astronaut and a soft-edged mask
/// (tests/scripts/gen_vae_processor.py).
#[test]
fn inpainting_inputs_equal_diffusers() {
    use consistentid_core::image::vae_processor;
    let bytes = std::fs::read(fixture("inpaint_inputs/expected.safetensors")).unwrap();
    let want = TensorFile::parse("inputs", &bytes).unwrap();
    let photo = decode(
        &std::fs::read(real_data("images/astronaut.png")).unwrap(),
        "astronaut",
    )
    .unwrap();
    let image = vae_processor::image(&photo, 96, 64);
    let (expected, _) = want.f32("image_96x64").unwrap();
    let worst = image
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "image differs by {worst}");
    let (rgb, shape) = want.i64("mask_rgb").unwrap();
    let mask_rgb =
        RgbImage::from_raw(shape[1], shape[0], rgb.iter().map(|&v| v as u8).collect()).unwrap();
    for (w, h) in [(96, 64), (160, 120)] {
        let (expected, _) = want.f32(&format!("mask_{w}x{h}")).unwrap();
        assert_eq!(
            vae_processor::mask(&mask_rgb, w, h),
            expected,
            "mask {w}x{h}"
        );
    }
}
