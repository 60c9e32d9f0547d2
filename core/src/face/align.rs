//! insightface's `norm_crop`: a similarity transform of five landmarks onto the ArcFace
//! template, then an OpenCV bilinear warp with a black border.

use crate::image::RgbImage;
use crate::image::cv::warp_affine;

/// The ArcFace 112×112 template: eye centres, nose tip, mouth corners.
pub const ARCFACE_TEMPLATE: [[f64; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// The least-squares similarity transform (rotation, uniform scale, translation) taking `src`
/// to `dst`, as a 2×3 matrix. Equal to skimage's `SimilarityTransform.estimate` (Umeyama),
/// whose optimum in 2-D has this closed form.
pub fn similarity_transform(src: &[[f64; 2]], dst: &[[f64; 2]]) -> [[f64; 3]; 2] {
    let n = src.len() as f64;
    let mean = |p: &[[f64; 2]]| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(a, b), q| (a + q[0], b + q[1]));
        [sx / n, sy / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut dot, mut cross, mut var) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        var += sx * sx + sy * sy;
    }
    if var == 0.0 {
        return [[1.0, 0.0, md[0] - ms[0]], [0.0, 1.0, md[1] - ms[1]]];
    }
    let (a, b) = (dot / var, cross / var);
    [
        [a, -b, md[0] - (a * ms[0] - b * ms[1])],
        [b, a, md[1] - (b * ms[0] + a * ms[1])],
    ]
}

/// The transform `norm_crop` uses for an output of `size` pixels (a multiple of 112 or 128).
pub fn estimate_norm(landmarks: &[[f32; 2]], size: usize) -> [[f64; 3]; 2] {
    let (ratio, dx) = if size.is_multiple_of(112) {
        (size as f64 / 112.0, 0.0)
    } else {
        (size as f64 / 128.0, 8.0 * size as f64 / 128.0)
    };
    let dst: Vec<[f64; 2]> = ARCFACE_TEMPLATE
        .iter()
        .map(|p| [p[0] * ratio + dx, p[1] * ratio])
        .collect();
    let src: Vec<[f64; 2]> = landmarks
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    similarity_transform(&src, &dst)
}

/// The aligned `size`×`size` face crop.
pub fn norm_crop(img: &RgbImage, landmarks: &[[f32; 2]], size: usize) -> RgbImage {
    warp_affine(img, estimate_norm(landmarks, size), size, size)
}
