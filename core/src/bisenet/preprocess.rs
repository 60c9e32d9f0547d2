//! BiSeNet's input as the official `parsing_face_mask`: Pillow BILINEAR resize to 512×512
//! (aspect ratio ignored), `ToTensor` (÷255 in f32), ImageNet mean/std.

use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};

pub const SIZE: usize = 512;
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Planar `[3, 512, 512]` network input.
pub fn preprocess(img: &RgbImage) -> Vec<f32> {
    let small = resize(img, SIZE, SIZE, Filter::Bilinear);
    let n = SIZE * SIZE;
    let mut out = vec![0.0; 3 * n];
    for (i, px) in small.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = (f32::from(px[c]) / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    out
}
