//! SCRFD (insightface `det_10g.onnx` and relatives) with insightface's exact pre- and
//! post-processing: letterbox with OpenCV's bilinear resize, `(x − 127.5) / 128`, anchors at
//! strides 8/16/32 (2 per location), distance decoding, score threshold, NMS.

use burn::tensor::Device;

use super::{ChannelOrder, Detection};
use crate::image::RgbImage;
use crate::image::cv::resize_linear;
use crate::onnx::{FloatValue, OnnxModel, OnnxSession, Value};
use crate::{Error, Result};

/// insightface's defaults (`FaceAnalysis.prepare(det_size=(640, 640))`, det_thresh 0.5).
pub const DEFAULT_INPUT_SIZE: (usize, usize) = (640, 640);
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.5;
pub const DEFAULT_NMS_THRESHOLD: f32 = 0.4;

/// The network input after letterboxing: the canvas and the scale applied to the image.
pub struct Letterbox {
    pub canvas: RgbImage,
    pub scale: f32,
}

/// Resizes `img` keeping its aspect ratio into the top-left of a black `width`×`height` canvas.
pub fn letterbox(img: &RgbImage, (width, height): (usize, usize)) -> Letterbox {
    let im_ratio = img.height as f64 / img.width as f64;
    let model_ratio = height as f64 / width as f64;
    let (new_w, new_h) = if im_ratio > model_ratio {
        ((height as f64 / im_ratio) as usize, height)
    } else {
        (width, (width as f64 * im_ratio) as usize)
    };
    let (new_w, new_h) = (new_w.max(1), new_h.max(1));
    let resized = resize_linear(img, new_w, new_h);
    let mut canvas = RgbImage::new(width, height);
    for y in 0..new_h {
        let src = &resized.data[y * new_w * 3..(y + 1) * new_w * 3];
        canvas.data[y * width * 3..y * width * 3 + new_w * 3].copy_from_slice(src);
    }
    Letterbox {
        canvas,
        scale: (new_h as f64 / img.height as f64) as f32,
    }
}

/// A loaded SCRFD detector.
pub struct Scrfd {
    session: OnnxSession,
    input: String,
    /// Feature-map strides; outputs are grouped as scores, boxes, (keypoints) per stride.
    strides: Vec<usize>,
    anchors: usize,
    keypoints: bool,
    pub input_size: (usize, usize),
    pub score_threshold: f32,
    pub nms_threshold: f32,
    pub channel_order: ChannelOrder,
}

impl Scrfd {
    /// Loads the ONNX graph; the output count tells the variant, as in insightface.
    pub fn new(model: OnnxModel, device: &Device) -> Result<Self> {
        let (strides, anchors, keypoints) = match model.outputs.len() {
            6 => (vec![8, 16, 32], 2, false),
            9 => (vec![8, 16, 32], 2, true),
            10 => (vec![8, 16, 32, 64, 128], 1, false),
            15 => (vec![8, 16, 32, 64, 128], 1, true),
            n => {
                return Err(Error::InvalidRequest(format!(
                    "not an SCRFD detector: {n} outputs (expected 6, 9, 10 or 15)"
                )));
            }
        };
        let input = model
            .inputs
            .first()
            .map(|i| i.name.clone())
            .ok_or_else(|| Error::InvalidRequest("the detector graph has no input".into()))?;
        // A graph with a fixed input size uses it, as insightface does.
        let input_size = match model.inputs[0].dims.as_slice() {
            [_, _, Some(h), Some(w)] => (*w, *h),
            _ => DEFAULT_INPUT_SIZE,
        };
        Ok(Self {
            session: OnnxSession::new(model, device)?,
            input,
            strides,
            anchors,
            keypoints,
            input_size,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            channel_order: ChannelOrder::default(),
        })
    }

    /// The network input `[1, 3, H, W]` for a letterboxed canvas: `(x − 127.5) / 128` with
    /// the channels in the order the network sees.
    pub fn blob(&self, canvas: &RgbImage) -> Vec<f32> {
        let img = match self.channel_order {
            ChannelOrder::Corrected => canvas.clone(),
            ChannelOrder::Official => canvas.swap_rb(),
        };
        img.to_planar()
            .into_iter()
            .map(|v| (v - 127.5) * (1.0 / 128.0))
            .collect()
    }

    /// Detects faces, sorted by score (highest first), in image pixels.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let lb = letterbox(img, self.input_size);
        let (w, h) = self.input_size;
        let blob = FloatValue::from_host(
            vec![1, 3, h, w],
            self.blob(&lb.canvas),
            self.session.device(),
        );
        let outputs = self
            .session
            .run(vec![(self.input.clone(), Value::Float(blob))])?;
        let host: Vec<Vec<f32>> = outputs
            .iter()
            .map(|(_, v)| match v {
                Value::Float(f) => f.to_host(),
                Value::Int(i) => i.data.iter().map(|&x| x as f32).collect(),
            })
            .collect();
        let fmc = self.strides.len();
        let mut candidates = Vec::new();
        for (idx, &stride) in self.strides.iter().enumerate() {
            let (fh, fw) = (h / stride, w / stride);
            let n = fh * fw * self.anchors;
            let scores = &host[idx];
            let boxes = &host[idx + fmc];
            let kps = self.keypoints.then(|| &host[idx + 2 * fmc]);
            if scores.len() != n || boxes.len() != 4 * n || kps.is_some_and(|k| k.len() != 10 * n) {
                return Err(Error::InvalidRequest(format!(
                    "detector output for stride {stride} has {} scores, expected {n}",
                    scores.len()
                )));
            }
            let s = stride as f32;
            for i in 0..n {
                if scores[i] < self.score_threshold {
                    continue;
                }
                let cell = i / self.anchors;
                let (cx, cy) = (((cell % fw) * stride) as f32, ((cell / fw) * stride) as f32);
                let d = &boxes[4 * i..4 * i + 4];
                let bbox = [
                    (cx - d[0] * s) / lb.scale,
                    (cy - d[1] * s) / lb.scale,
                    (cx + d[2] * s) / lb.scale,
                    (cy + d[3] * s) / lb.scale,
                ];
                let landmarks = kps
                    .map(|k| {
                        (0..5)
                            .map(|p| {
                                [
                                    (cx + k[10 * i + 2 * p] * s) / lb.scale,
                                    (cy + k[10 * i + 2 * p + 1] * s) / lb.scale,
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                candidates.push(Detection {
                    bbox,
                    score: scores[i],
                    landmarks,
                });
            }
        }
        // Highest score first; equal scores keep the later one first, as numpy's
        // `argsort()[::-1]` on a stable sort would.
        candidates.reverse();
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(nms(candidates, self.nms_threshold))
    }
}

/// insightface's greedy NMS (areas with the +1 pixel convention; keep while IoU ≤ threshold).
pub fn nms(sorted: Vec<Detection>, threshold: f32) -> Vec<Detection> {
    let area = |d: &Detection| (d.bbox[2] - d.bbox[0] + 1.0) * (d.bbox[3] - d.bbox[1] + 1.0);
    let mut remaining = sorted;
    let mut keep = Vec::new();
    while !remaining.is_empty() {
        let best = remaining.remove(0);
        let a = area(&best);
        remaining.retain(|d| {
            let w = (best.bbox[2].min(d.bbox[2]) - best.bbox[0].max(d.bbox[0]) + 1.0).max(0.0);
            let h = (best.bbox[3].min(d.bbox[3]) - best.bbox[1].max(d.bbox[1]) + 1.0).max(0.0);
            let inter = w * h;
            inter / (a + area(d) - inter) <= threshold
        });
        keep.push(best);
    }
    keep
}
