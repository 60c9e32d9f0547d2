//! transformers' `CLIPImageProcessor` with its defaults, Pillow-exact: shortest side to 224 with
//! Pillow BICUBIC (antialiased), centre crop 224, ×1/255 (f64, stored f32), then
//! `(x − mean) / std` in f32 with the OpenAI CLIP mean and std.

use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};

// The decimals exactly as transformers writes them; numpy rounds them to f32 the same way.
#[allow(clippy::excessive_precision)]
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The resized and centre-cropped 8-bit image (before rescaling).
pub fn resize_and_crop(img: &RgbImage, size: usize) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (size as f64 * long as f64 / short as f64) as usize;
    let (nw, nh) = if w <= h {
        (size, new_long)
    } else {
        (new_long, size)
    };
    let resized = resize(img, nw, nh, Filter::Bicubic);
    let (top, left) = ((nh.saturating_sub(size)) / 2, (nw.saturating_sub(size)) / 2);
    let mut out = RgbImage::new(size, size);
    for y in 0..size.min(nh) {
        let src = ((top + y) * nw + left) * 3;
        let n = size.min(nw) * 3;
        out.data[y * size * 3..y * size * 3 + n].copy_from_slice(&resized.data[src..src + n]);
    }
    out
}

/// Normalises an 8-bit image to CLIP's input, planar `[3, H, W]`.
pub fn normalize(img: &RgbImage) -> Vec<f32> {
    normalize_with(img, CLIP_MEAN, CLIP_STD)
}

/// transformers' rescale (÷255 in f64, kept as f32) and normalise with `mean` / `std`, planar.
pub fn normalize_with(img: &RgbImage, mean: [f32; 3], std: [f32; 3]) -> Vec<f32> {
    let n = img.width * img.height;
    let mut out = vec![0.0f32; 3 * n];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            let scaled = (f64::from(px[c]) * (1.0 / 255.0)) as f32;
            out[c * n + i] = (scaled - mean[c]) / std[c];
        }
    }
    out
}

/// `CLIPImageProcessor()(img)["pixel_values"][0]`: planar `[3, size, size]`.
pub fn preprocess(img: &RgbImage, size: usize) -> Vec<f32> {
    normalize(&resize_and_crop(img, size))
}
