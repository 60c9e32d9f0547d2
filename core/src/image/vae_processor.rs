//! diffusers 0.23 `VaeImageProcessor.preprocess` for PIL inputs, as the inpainting pipelines
//! prepare their image and mask: Pillow LANCZOS resize to the asked size, ÷255; the image scaled
//! to [-1, 1]; the mask made grey first (Pillow's L) and binarised at 0.5
//! (`mask_processor = VaeImageProcessor(do_normalize=False, do_binarize=True,
//! do_convert_grayscale=True)`).

use super::RgbImage;
use super::pil::{Filter, pil_grey, resize, resize_gray};

/// The image, planar `[3, height, width]` in [-1, 1].
pub fn image(img: &RgbImage, width: usize, height: usize) -> Vec<f32> {
    planar(img, width, height, |v| 2.0 * v - 1.0)
}

/// A ControlNet's control image (`control_image_processor`: no normalisation), planar
/// `[3, height, width]` in [0, 1].
pub fn control(img: &RgbImage, width: usize, height: usize) -> Vec<f32> {
    planar(img, width, height, |v| v)
}

/// LANCZOS to the size, ÷255, then `f`, planar.
fn planar(img: &RgbImage, width: usize, height: usize, f: impl Fn(f32) -> f32) -> Vec<f32> {
    let small = resize(img, width, height, Filter::Lanczos);
    let n = width * height;
    let mut out = vec![0f32; 3 * n];
    for (i, px) in small.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = f(f32::from(px[c]) / 255.0);
        }
    }
    out
}

/// The mask, `[height, width]` of 0 or 1 (1: repaint).
pub fn mask(img: &RgbImage, width: usize, height: usize) -> Vec<f32> {
    let grey: Vec<u8> = img
        .data
        .chunks_exact(3)
        .map(|p| pil_grey(p[0], p[1], p[2]))
        .collect();
    resize_gray(&grey, img.width, img.height, width, height, Filter::Lanczos)
        .into_iter()
        .map(|v| {
            if f32::from(v) / 255.0 >= 0.5 {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}
