//! OpenCV's Canny edge detector (`cv2.Canny(image, low, high)`, aperture 3, L1 gradient) as
//! OpenCV 4.8 computes it, in integers: 3×3 Sobel with replicated borders (`CV_16S`); on colour
//! images each pixel keeps the channel of largest |dx| + |dy| (the first on ties); non-maximum
//! suppression with OpenCV's fixed-point 22.5° / 67.5° sectors (strict on one side, ≥ on the
//! other, as its code); thresholds floored; hysteresis over 8 neighbours. The official
//! ControlNet demo makes its control image this way (`demo/controlnet_demo.py`).

use super::RgbImage;

const CANNY_SHIFT: i64 = 15;
/// `(int)(tan(22.5°) · 2^15 + 0.5)`.
const TG22: i64 = 13573;

/// Edges of `img` (0 or 255, row-major, one channel).
/// The edges as a control image: the edge map in all three channels (the official demos'
/// `make_canny_condition`).
pub fn canny_image(img: &RgbImage, low: f64, high: f64) -> RgbImage {
    let edges = canny(img, low, high);
    RgbImage {
        width: img.width,
        height: img.height,
        data: edges.iter().flat_map(|&v| [v, v, v]).collect(),
    }
}

pub fn canny(img: &RgbImage, low: f64, high: f64) -> Vec<u8> {
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let (low, high) = (low.min(high).floor() as i64, low.max(high).floor() as i64);
    let at = |x: isize, y: isize, c: usize| -> i64 {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        i64::from(img.data[(y * w + x) * 3 + c])
    };
    // Gradients of the strongest channel, and their L1 magnitude.
    let mut dx = vec![0i64; w * h];
    let mut dy = vec![0i64; w * h];
    let mut mag = vec![0i64; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let mut best = (-1i64, 0i64, 0i64);
            for c in 0..3 {
                let gx = (at(x + 1, y - 1, c) + 2 * at(x + 1, y, c) + at(x + 1, y + 1, c))
                    - (at(x - 1, y - 1, c) + 2 * at(x - 1, y, c) + at(x - 1, y + 1, c));
                let gy = (at(x - 1, y + 1, c) + 2 * at(x, y + 1, c) + at(x + 1, y + 1, c))
                    - (at(x - 1, y - 1, c) + 2 * at(x, y - 1, c) + at(x + 1, y - 1, c));
                let m = gx.abs() + gy.abs();
                if m > best.0 {
                    best = (m, gx, gy);
                }
            }
            let i = y as usize * w + x as usize;
            (mag[i], dx[i], dy[i]) = best;
        }
    }
    // Outside the image the magnitude is 0.
    let m_at = |x: isize, y: isize| -> i64 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0
        } else {
            mag[y as usize * w + x as usize]
        }
    };
    // 0: may be an edge, 1: not an edge, 2: an edge.
    let mut map = vec![1u8; w * h];
    let mut stack = Vec::new();
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            let m = mag[i];
            if m <= low {
                continue;
            }
            let (xs, ys) = (dx[i], dy[i]);
            let ax = xs.abs();
            let ay = ys.abs() << CANNY_SHIFT;
            let tg22x = ax * TG22;
            let local_max = if ay < tg22x {
                m > m_at(x - 1, y) && m >= m_at(x + 1, y)
            } else {
                let tg67x = tg22x + (ax << (CANNY_SHIFT + 1));
                if ay > tg67x {
                    m > m_at(x, y - 1) && m >= m_at(x, y + 1)
                } else {
                    let s: isize = if (xs ^ ys) < 0 { -1 } else { 1 };
                    m > m_at(x - s, y - 1) && m > m_at(x + s, y + 1)
                }
            };
            if !local_max {
                continue;
            }
            if m > high {
                map[i] = 2;
                stack.push(i);
            } else {
                map[i] = 0;
            }
        }
    }
    // Hysteresis: weak pixels 8-connected to a strong one become edges.
    while let Some(i) = stack.pop() {
        let (x, y) = ((i % w) as isize, (i / w) as isize);
        for (ox, oy) in [
            (-1, -1),
            (0, -1),
            (1, -1),
            (-1, 0),
            (1, 0),
            (-1, 1),
            (0, 1),
            (1, 1),
        ] {
            let (nx, ny) = (x + ox, y + oy);
            if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                continue;
            }
            let j = ny as usize * w + nx as usize;
            if map[j] == 0 {
                map[j] = 2;
                stack.push(j);
            }
        }
    }
    map.into_iter()
        .map(|v| if v == 2 { 255 } else { 0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vertical_step_gives_one_edge_column() {
        let mut img = RgbImage::new(8, 6);
        for y in 0..6 {
            for x in 4..8 {
                img.data[(y * 8 + x) * 3..][..3].copy_from_slice(&[200, 200, 200]);
            }
        }
        let e = canny(&img, 100.0, 200.0);
        for y in 0..6 {
            let row: Vec<u8> = e[y * 8..(y + 1) * 8].to_vec();
            assert_eq!(row.iter().filter(|&&v| v == 255).count(), 1, "{row:?}");
        }
    }
}
