//! torch's `F.interpolate` on the host in f32, as torch 2.0 computes it on the CPU, for inputs
//! that need no graph (training's constant masks, the FID network's input):
//! - `F.interpolate(mode="bilinear", antialias=True)` (`_upsample_bilinear2d_aa`: PIL's
//!   triangle filter, widened by the scale when shrinking, without PIL's fixed-point
//!   rounding), width first, then height: the localization loss's region masks;
//! - `F.interpolate(mode="bilinear", align_corners=False)` without antialiasing: the
//!   background mask of the noise loss, pytorch-fid's resize to 299².

/// Source indices and weights of one output index.
struct Taps {
    index: Vec<usize>,
    weights: Vec<f32>,
}

/// `_compute_indices_weights_aa` for the bilinear (triangle) filter.
fn antialias_taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f32 / output as f32;
    let (support, invscale) = if scale >= 1.0 {
        (scale, 1.0 / scale)
    } else {
        (1.0, 1.0)
    };
    (0..output)
        .map(|i| {
            let center = scale * (i as f32 + 0.5);
            let start = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut weights: Vec<f32> = (start..end)
                .map(|j| {
                    let x = ((j as f32 - center + 0.5) * invscale).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let total: f32 = weights.iter().sum();
            if total != 0.0 {
                for w in &mut weights {
                    *w /= total;
                }
            }
            Taps {
                index: (start..end).collect(),
                weights,
            }
        })
        .collect()
}

/// `area_pixel_compute_source_index` + the two neighbours of plain bilinear (align_corners
/// False).
fn bilinear_taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|i| {
            let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let start = (src as usize).min(input - 1);
            let lambda = (src - start as f32).clamp(0.0, 1.0);
            // At the last pixel torch reads it twice (its second offset is 0).
            let next = if start + 1 < input { start + 1 } else { start };
            Taps {
                index: vec![start, next],
                weights: vec![1.0 - lambda, lambda],
            }
        })
        .collect()
}

/// `Σ wⱼ·at(indexⱼ)`, accumulated in order from the first product, as torch does.
fn dot(t: &Taps, at: impl Fn(usize) -> f32) -> f32 {
    let mut acc = t.weights[0] * at(t.index[0]);
    for (w, &i) in t.weights.iter().zip(&t.index).skip(1) {
        acc += w * at(i);
    }
    acc
}

/// Applies per-axis taps to each `[h, w]` plane of `planes`: width first, then height.
fn separable(planes: &[f32], h: usize, w: usize, rows: &[Taps], cols: &[Taps]) -> Vec<f32> {
    let (oh, ow) = (rows.len(), cols.len());
    let n = planes.len() / (h * w);
    let mut out = Vec::with_capacity(n * oh * ow);
    let mut tmp = vec![0f32; h * ow];
    for plane in planes.chunks_exact(h * w) {
        for y in 0..h {
            let line = &plane[y * w..(y + 1) * w];
            for (x, t) in cols.iter().enumerate() {
                tmp[y * ow + x] = dot(t, |i| line[i]);
            }
        }
        for t in rows {
            for x in 0..ow {
                out.push(dot(t, |i| tmp[i * ow + x]));
            }
        }
    }
    debug_assert_eq!(out.len(), n * oh * ow);
    out
}

/// Antialiased bilinear resize of `[.., h, w]` planes to `[.., oh, ow]`.
pub fn resize_antialias(planes: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    separable(planes, h, w, &antialias_taps(h, oh), &antialias_taps(w, ow))
}

/// Plain bilinear resize (align_corners False) of `[.., h, w]` planes to `[.., oh, ow]`.
pub fn resize_bilinear(planes: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    separable(planes, h, w, &bilinear_taps(h, oh), &bilinear_taps(w, ow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_by_eight_averages_the_two_middle_pixels_without_antialias() {
        // 512 → 64 averages source pixels 8d+3 and 8d+4 (train-eval spec A4).
        let line: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let plane: Vec<f32> = (0..16).flat_map(|_| line.clone()).collect();
        let out = resize_bilinear(&plane, 16, 16, 2, 2);
        assert_eq!(out, vec![3.5, 11.5, 3.5, 11.5]);
    }

    #[test]
    fn antialias_keeps_constants_and_spreads_edges() {
        let plane = vec![1.0f32; 40 * 40];
        let out = resize_antialias(&plane, 40, 40, 10, 10);
        assert!(out.iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let mut half = vec![0.0f32; 8 * 8];
        for y in 0..8 {
            for x in 4..8 {
                half[y * 8 + x] = 1.0;
            }
        }
        let out = resize_antialias(&half, 8, 8, 3, 3);
        // The middle column straddles the edge: a soft value, not 0 or 1.
        assert!(out[1] > 0.1 && out[1] < 0.9, "{out:?}");
    }
}
