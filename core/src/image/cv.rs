//! OpenCV's 8-bit bilinear `resize` and `warpAffine`, integer arithmetic as in OpenCV 4.x
//! (`INTER_RESIZE_COEF_BITS` = 11; `INTER_BITS` = 5 with 15-bit remap weights), so that
//! insightface's letterboxing and `norm_crop` give the same pixels.

use super::RgbImage;

/// `cvRound`: round half to even.
fn cv_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// Source index and 11-bit weights of output index `d` for `cv2.resize(INTER_LINEAR)`.
fn linear_taps(d: usize, scale: f64, len: usize) -> (usize, usize, i32, i32) {
    let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let mut s = f.floor() as i64;
    let mut frac = f - s as f32;
    if s < 0 {
        s = 0;
        frac = 0.0;
    }
    if s >= len as i64 - 1 {
        s = len as i64 - 1;
        frac = 0.0;
    }
    let a0 = cv_round(f64::from((1.0 - frac) * 2048.0)) as i32;
    let a1 = cv_round(f64::from(frac * 2048.0)) as i32;
    let s = s as usize;
    (s, (s + 1).min(len - 1), a0, a1)
}

/// `cv2.resize(img, (width, height))` with the default `INTER_LINEAR` on 8-bit images.
pub fn resize_linear(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    if width == img.width && height == img.height {
        return img.clone();
    }
    let sx = img.width as f64 / width as f64;
    let sy = img.height as f64 / height as f64;
    let xt: Vec<_> = (0..width).map(|x| linear_taps(x, sx, img.width)).collect();
    // Horizontal pass into 32-bit rows (value × 2048), as OpenCV's HResizeLinear.
    let hrow = |y: usize| -> Vec<i32> {
        let mut row = vec![0i32; width * 3];
        for (x, &(x0, x1, a0, a1)) in xt.iter().enumerate() {
            for c in 0..3 {
                row[x * 3 + c] =
                    i32::from(img.at(x0, y, c)) * a0 + i32::from(img.at(x1, y, c)) * a1;
            }
        }
        row
    };
    let mut out = RgbImage::new(width, height);
    for y in 0..height {
        let (y0, y1, b0, b1) = linear_taps(y, sy, img.height);
        let (r0, r1) = (hrow(y0), hrow(y1));
        for i in 0..width * 3 {
            // VResizeLinear<uchar, int, short>: two 16-bit products, then a rounding shift.
            let v = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
            out.data[y * width * 3 + i] = v.clamp(0, 255) as u8;
        }
    }
    out
}

/// `cv2.warpAffine(img, m, (width, height))`: bilinear, constant border 0. `m` maps source to
/// destination pixels (it is inverted here as OpenCV does).
pub fn warp_affine(img: &RgbImage, m: [[f64; 3]; 2], width: usize, height: usize) -> RgbImage {
    const AB_BITS: i32 = 10;
    const INTER_BITS: i32 = 5;
    const TAB: i64 = 1 << INTER_BITS;
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let d = if det != 0.0 { 1.0 / det } else { 0.0 };
    let (a11, a22) = (m[1][1] * d, m[0][0] * d);
    let (a12, a21) = (-m[0][1] * d, -m[1][0] * d);
    let b1 = -a11 * m[0][2] - a12 * m[1][2];
    let b2 = -a21 * m[0][2] - a22 * m[1][2];
    let scale = f64::from(1 << AB_BITS);
    let round_delta = (1i64 << AB_BITS) / TAB / 2;

    let mut out = RgbImage::new(width, height);
    let (w, h) = (img.width as i64, img.height as i64);
    for y in 0..height {
        let x0 = cv_round((a12 * y as f64 + b1) * scale) + round_delta;
        let y0 = cv_round((a22 * y as f64 + b2) * scale) + round_delta;
        for x in 0..width {
            let gx = (x0 + cv_round(a11 * x as f64 * scale)) >> (AB_BITS - INTER_BITS);
            let gy = (y0 + cv_round(a21 * x as f64 * scale)) >> (AB_BITS - INTER_BITS);
            let (sx, sy) = (gx >> INTER_BITS, gy >> INTER_BITS);
            let (fx, fy) = (gx & (TAB - 1), gy & (TAB - 1));
            // 15-bit weights: (a/32)(b/32)·32768 = 32ab, exact integers summing to 32768.
            let weights = [
                32 * (TAB - fy) * (TAB - fx),
                32 * (TAB - fy) * fx,
                32 * fy * (TAB - fx),
                32 * fy * fx,
            ];
            let taps = [(sx, sy), (sx + 1, sy), (sx, sy + 1), (sx + 1, sy + 1)];
            if taps
                .iter()
                .all(|&(tx, ty)| tx < 0 || ty < 0 || tx >= w || ty >= h)
            {
                continue; // all taps in the border: the border value 0
            }
            for c in 0..3 {
                let mut acc = 0i64;
                for (&(tx, ty), &wt) in taps.iter().zip(&weights) {
                    if tx >= 0 && ty >= 0 && tx < w && ty < h {
                        acc += wt * i64::from(img.at(tx as usize, ty as usize, c));
                    }
                }
                let v = (acc + (1 << 14)) >> 15;
                out.data[(y * width + x) * 3 + c] = v.clamp(0, 255) as u8;
            }
        }
    }
    out
}
