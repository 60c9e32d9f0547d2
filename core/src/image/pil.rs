//! Pillow's `Image.resize` for 8-bit images (`ImagingResample`): a separable convolution whose
//! support widens when shrinking (antialiasing), 22-bit fixed-point weights, horizontal pass
//! rounded to 8 bits, then the vertical pass.

use super::RgbImage;

/// Pillow's resampling filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (Keys cubic with a = −0.5, support 2).
    Bicubic,
    /// `Image.LANCZOS` (sinc windowed by sinc, support 3): diffusers' image processor default.
    Lanczos,
}

/// Pillow's RGB → L: `(R·19595 + G·38470 + B·7471 + 0x8000) >> 16`.
pub fn pil_grey(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => (1.0 - x).max(0.0),
            Filter::Lanczos if x < 3.0 => sinc(x) * sinc(x / 3.0),
            Filter::Lanczos => 0.0,
            Filter::Bicubic => {
                let a = -0.5;
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index: the first input index and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let k = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let scaled = v * f64::from(1u32 << PRECISION_BITS);
                    if v < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            (xmin, k)
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `img.resize((width, height), filter)` for 8-bit RGB, as Pillow computes it.
pub fn resize(img: &RgbImage, width: usize, height: usize, filter: Filter) -> RgbImage {
    RgbImage {
        width,
        height,
        data: resize_interleaved(&img.data, img.width, img.height, 3, width, height, filter),
    }
}

/// The same for a single-channel ('L') image, row-major.
pub fn resize_gray(
    data: &[u8],
    w: usize,
    h: usize,
    width: usize,
    height: usize,
    filter: Filter,
) -> Vec<u8> {
    resize_interleaved(data, w, h, 1, width, height, filter)
}

/// Pillow's two passes on `ch` interleaved 8-bit channels.
fn resize_interleaved(
    data: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    width: usize,
    height: usize,
    filter: Filter,
) -> Vec<u8> {
    let half = 1i64 << (PRECISION_BITS - 1);
    let mut tmp = data.to_vec();
    if width != w {
        let cx = coefficients(w, width, filter);
        tmp = vec![0; width * h * ch];
        for y in 0..h {
            for (x, (x0, k)) in cx.iter().enumerate() {
                for c in 0..ch {
                    let mut acc = half;
                    for (i, &wt) in k.iter().enumerate() {
                        acc += i64::from(data[(y * w + x0 + i) * ch + c]) * i64::from(wt);
                    }
                    tmp[(y * width + x) * ch + c] = clip8(acc);
                }
            }
        }
    }
    if height == h {
        return tmp;
    }
    let cy = coefficients(h, height, filter);
    let mut out = vec![0; width * height * ch];
    for (y, (y0, k)) in cy.iter().enumerate() {
        for x in 0..width {
            for c in 0..ch {
                let mut acc = half;
                for (i, &wt) in k.iter().enumerate() {
                    acc += i64::from(tmp[((y0 + i) * width + x) * ch + c]) * i64::from(wt);
                }
                out[(y * width + x) * ch + c] = clip8(acc);
            }
        }
    }
    out
}

/// `Image.composite(img, black, mask)`: `img` where the 'L' mask is 255, black where 0, blended
/// in between with Pillow's integer `DIV255` rounding.
pub fn composite_over_black(img: &RgbImage, mask: &[u8]) -> RgbImage {
    let mut out = img.clone();
    for (px, &m) in out.data.chunks_exact_mut(3).zip(mask) {
        for v in px.iter_mut() {
            let t = u32::from(*v) * u32::from(m) + 128;
            *v = (((t >> 8) + t) >> 8) as u8;
        }
    }
    out
}
