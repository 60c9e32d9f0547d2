//! MTCNN (Zhang et al. 2016) as facenet-pytorch 2.6.0 runs it (`detect_face`): an image
//! pyramid through P-Net, then R-Net and O-Net on square crops, giving boxes, scores and the
//! same five landmarks as SCRFD. MIT-licensed weights ship in the facenet-pytorch wheel as
//! legacy torch pickles (`pnet.pt`, `rnet.pt`, `onet.pt`).

use std::collections::HashMap;

use burn::tensor::activation::softmax;
use burn::tensor::module::{adaptive_avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::Detection;
use crate::image::RgbImage;
use crate::weights::torch_file::{self, TorchTensor};
use crate::{Error, Result};

/// facenet-pytorch's defaults.
pub const MIN_FACE: f32 = 20.0;
pub const FACTOR: f32 = 0.709;
pub const THRESHOLDS: [f32; 3] = [0.6, 0.7, 0.7];

/// One network's parameters by state-dict name, on the device.
struct Params {
    tensors: HashMap<String, (Vec<usize>, Tensor<1>)>,
}

/// (name, shape) of every parameter of each network, as in facenet-pytorch's modules.
const PNET: &[(&str, &[usize])] = &[
    ("conv1.weight", &[10, 3, 3, 3]),
    ("conv1.bias", &[10]),
    ("prelu1.weight", &[10]),
    ("conv2.weight", &[16, 10, 3, 3]),
    ("conv2.bias", &[16]),
    ("prelu2.weight", &[16]),
    ("conv3.weight", &[32, 16, 3, 3]),
    ("conv3.bias", &[32]),
    ("prelu3.weight", &[32]),
    ("conv4_1.weight", &[2, 32, 1, 1]),
    ("conv4_1.bias", &[2]),
    ("conv4_2.weight", &[4, 32, 1, 1]),
    ("conv4_2.bias", &[4]),
];
const RNET: &[(&str, &[usize])] = &[
    ("conv1.weight", &[28, 3, 3, 3]),
    ("conv1.bias", &[28]),
    ("prelu1.weight", &[28]),
    ("conv2.weight", &[48, 28, 3, 3]),
    ("conv2.bias", &[48]),
    ("prelu2.weight", &[48]),
    ("conv3.weight", &[64, 48, 2, 2]),
    ("conv3.bias", &[64]),
    ("prelu3.weight", &[64]),
    ("dense4.weight", &[128, 576]),
    ("dense4.bias", &[128]),
    ("prelu4.weight", &[128]),
    ("dense5_1.weight", &[2, 128]),
    ("dense5_1.bias", &[2]),
    ("dense5_2.weight", &[4, 128]),
    ("dense5_2.bias", &[4]),
];
const ONET: &[(&str, &[usize])] = &[
    ("conv1.weight", &[32, 3, 3, 3]),
    ("conv1.bias", &[32]),
    ("prelu1.weight", &[32]),
    ("conv2.weight", &[64, 32, 3, 3]),
    ("conv2.bias", &[64]),
    ("prelu2.weight", &[64]),
    ("conv3.weight", &[64, 64, 3, 3]),
    ("conv3.bias", &[64]),
    ("prelu3.weight", &[64]),
    ("conv4.weight", &[128, 64, 2, 2]),
    ("conv4.bias", &[128]),
    ("prelu4.weight", &[128]),
    ("dense5.weight", &[256, 1152]),
    ("dense5.bias", &[256]),
    ("prelu5.weight", &[256]),
    ("dense6_1.weight", &[2, 256]),
    ("dense6_1.bias", &[2]),
    ("dense6_2.weight", &[4, 256]),
    ("dense6_2.bias", &[4]),
    ("dense6_3.weight", &[10, 256]),
    ("dense6_3.bias", &[10]),
];

impl Params {
    fn load(
        bytes: &[u8],
        path: &str,
        layout: &[(&str, &[usize])],
        device: &Device,
    ) -> Result<Self> {
        let bad = |reason: String| Error::WeightFile {
            path: path.to_string(),
            reason,
        };
        let read: HashMap<String, TorchTensor> =
            torch_file::read(bytes).map_err(bad)?.into_iter().collect();
        let mut tensors = HashMap::new();
        for &(name, shape) in layout {
            let t = read.get(name).ok_or_else(|| Error::WeightMismatch {
                path: path.to_string(),
                reason: format!("`{name}` missing (is this the right MTCNN network?)"),
            })?;
            if t.shape != shape {
                return Err(Error::WeightMismatch {
                    path: path.to_string(),
                    reason: format!("`{name}` has shape {:?}, expected {shape:?}", t.shape),
                });
            }
            let data = Tensor::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device);
            tensors.insert(name.to_string(), (t.shape.clone(), data));
        }
        if read.len() != layout.len() {
            let extra: Vec<&String> = read
                .keys()
                .filter(|k| !layout.iter().any(|(n, _)| n == k))
                .collect();
            return Err(Error::WeightMismatch {
                path: path.to_string(),
                reason: format!("unexpected tensors {extra:?}"),
            });
        }
        Ok(Self { tensors })
    }

    fn get<const D: usize>(&self, name: &str) -> Tensor<D> {
        let (shape, t) = &self.tensors[name];
        let mut dims = [1; D];
        dims.copy_from_slice(shape);
        t.clone().reshape(dims)
    }

    fn conv(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        let w = self.get::<4>(&format!("{name}.weight"));
        let b = self.get::<1>(&format!("{name}.bias"));
        conv2d(x, w, Some(b), ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
    }

    fn prelu4(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        let a = self.get::<1>(&format!("{name}.weight"));
        let c = a.dims()[0];
        let a: Tensor<4> = a.reshape([1, c, 1, 1]);
        x.clone().clamp_min(0.0).add(x.clamp_max(0.0).mul(a))
    }

    fn prelu2(&self, name: &str, x: Tensor<2>) -> Tensor<2> {
        let a = self.get::<1>(&format!("{name}.weight"));
        let c = a.dims()[0];
        let a: Tensor<2> = a.reshape([1, c]);
        x.clone().clamp_min(0.0).add(x.clamp_max(0.0).mul(a))
    }

    fn dense(&self, name: &str, x: Tensor<2>) -> Tensor<2> {
        let w = self.get::<2>(&format!("{name}.weight"));
        let b = self.get::<1>(&format!("{name}.bias"));
        let n = b.dims()[0];
        x.matmul(w.transpose()).add(b.reshape([1, n]))
    }
}

fn pool(x: Tensor<4>, k: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([k, k])
            .with_stride([2, 2])
            .with_ceil_mode(true),
    )
}

/// The three networks.
pub struct Mtcnn {
    pnet: Params,
    rnet: Params,
    onet: Params,
    device: Device,
    pub min_face: f32,
    pub factor: f32,
    pub thresholds: [f32; 3],
}

/// A candidate box: x1, y1, x2, y2, score.
type Cand = [f32; 5];

impl Mtcnn {
    /// Loads `pnet.pt`, `rnet.pt`, `onet.pt` (bytes with their paths for errors).
    pub fn load(files: [(&[u8], &str); 3], device: &Device) -> Result<Self> {
        Ok(Self {
            pnet: Params::load(files[0].0, files[0].1, PNET, device)?,
            rnet: Params::load(files[1].0, files[1].1, RNET, device)?,
            onet: Params::load(files[2].0, files[2].1, ONET, device)?,
            device: device.clone(),
            min_face: MIN_FACE,
            factor: FACTOR,
            thresholds: THRESHOLDS,
        })
    }

    /// (regression [N,4,h,w], face probability [N,h,w]).
    fn pnet(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let p = &self.pnet;
        let x = pool(p.prelu4("prelu1", p.conv("conv1", x)), 2);
        let x = p.prelu4("prelu2", p.conv("conv2", x));
        let x = p.prelu4("prelu3", p.conv("conv3", x));
        let prob = softmax(p.conv("conv4_1", x.clone()), 1);
        (p.conv("conv4_2", x), prob)
    }

    /// facenet-pytorch flattens after permuting to (N, W, H, C).
    fn flatten_whc(x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        x.permute([0, 3, 2, 1]).reshape([n, w * h * c])
    }

    /// (regression [N,4], probabilities [N,2]).
    fn rnet(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let p = &self.rnet;
        let x = pool(p.prelu4("prelu1", p.conv("conv1", x)), 3);
        let x = pool(p.prelu4("prelu2", p.conv("conv2", x)), 3);
        let x = p.prelu4("prelu3", p.conv("conv3", x));
        let x = p.prelu2("prelu4", p.dense("dense4", Self::flatten_whc(x)));
        (
            p.dense("dense5_2", x.clone()),
            softmax(p.dense("dense5_1", x), 1),
        )
    }

    /// (regression [N,4], landmarks [N,10], probabilities [N,2]).
    fn onet(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let p = &self.onet;
        let x = pool(p.prelu4("prelu1", p.conv("conv1", x)), 3);
        let x = pool(p.prelu4("prelu2", p.conv("conv2", x)), 3);
        let x = pool(p.prelu4("prelu3", p.conv("conv3", x)), 2);
        let x = p.prelu4("prelu4", p.conv("conv4", x));
        let x = p.prelu2("prelu5", p.dense("dense5", Self::flatten_whc(x)));
        (
            p.dense("dense6_2", x.clone()),
            p.dense("dense6_3", x.clone()),
            softmax(p.dense("dense6_1", x), 1),
        )
    }

    /// Square crops of `boxes` resized (area interpolation) to `size`, normalised.
    fn crops(&self, img: &Tensor<4>, boxes: &[Cand], size: usize) -> (Tensor<4>, Vec<usize>) {
        let [_, _, h, w] = img.dims();
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            // facenet-pytorch `pad`: truncate, clamp to [1, w] / [1, h], slice [y-1, ey).
            let x = (b[0].trunc() as i64).max(1);
            let y = (b[1].trunc() as i64).max(1);
            let ex = (b[2].trunc() as i64).min(w as i64);
            let ey = (b[3].trunc() as i64).min(h as i64);
            if ey > y - 1 && ex > x - 1 {
                let crop = img.clone().slice([
                    0..1,
                    0..3,
                    (y - 1) as usize..ey as usize,
                    (x - 1) as usize..ex as usize,
                ]);
                out.push(adaptive_avg_pool2d(crop, [size, size]));
                kept.push(i);
            }
        }
        let batch = Tensor::cat(out, 0).sub_scalar(127.5).mul_scalar(0.0078125);
        (batch, kept)
    }

    /// Detects faces: boxes, scores and five landmarks, highest score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>> {
        let (h, w) = (img.height, img.width);
        let data: Vec<f32> = img.to_planar();
        let image: Tensor<4> = Tensor::from_data(TensorData::new(data, [1, 3, h, w]), &self.device);

        // Stage 1: P-Net over the pyramid.
        let m = 12.0 / self.min_face;
        let mut minl = h.min(w) as f32 * m;
        let mut scales = Vec::new();
        let mut scale = m;
        while minl >= 12.0 {
            scales.push(scale);
            scale *= self.factor;
            minl *= self.factor;
        }
        let mut stage1: Vec<(Cand, [f32; 4])> = Vec::new();
        for &s in &scales {
            let (hs, ws) = ((h as f32 * s + 1.0) as usize, (w as f32 * s + 1.0) as usize);
            let x = adaptive_avg_pool2d(image.clone(), [hs, ws])
                .sub_scalar(127.5)
                .mul_scalar(0.0078125);
            let (reg, prob) = self.pnet(x);
            let [_, _, fh, fw] = prob.dims();
            let prob = host(prob);
            let reg = host(reg);
            let mut here = Vec::new();
            for y in 0..fh {
                for x in 0..fw {
                    let score = prob[fh * fw + y * fw + x];
                    if score >= self.thresholds[0] {
                        let (bx, by) = (x as f32, y as f32);
                        let r = [0, 1, 2, 3].map(|k| reg[k * fh * fw + y * fw + x]);
                        let b = [
                            ((2.0 * bx + 1.0) / s).floor(),
                            ((2.0 * by + 1.0) / s).floor(),
                            ((2.0 * bx + 12.0) / s).floor(),
                            ((2.0 * by + 12.0) / s).floor(),
                            score,
                        ];
                        here.push((b, r));
                    }
                }
            }
            stage1.extend(nms_union(here, 0.5));
        }
        let boxes: Vec<Cand> = nms_union(stage1, 0.7)
            .into_iter()
            .map(|(b, r)| {
                let (bw, bh) = (b[2] - b[0], b[3] - b[1]);
                rerec([
                    b[0] + r[0] * bw,
                    b[1] + r[1] * bh,
                    b[2] + r[2] * bw,
                    b[3] + r[3] * bh,
                    b[4],
                ])
            })
            .collect();
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 2: R-Net on 24×24 crops.
        let (batch, kept) = self.crops(&image, &boxes, 24);
        let (reg, prob) = self.rnet(batch);
        let (reg, prob) = (host(reg), host(prob));
        let mut stage2 = Vec::new();
        for (j, &i) in kept.iter().enumerate() {
            let score = prob[2 * j + 1];
            if score > self.thresholds[1] {
                let b = boxes[i];
                stage2.push((
                    [b[0], b[1], b[2], b[3], score],
                    [0, 1, 2, 3].map(|k| reg[4 * j + k]),
                ));
            }
        }
        let boxes: Vec<Cand> = nms_union(stage2, 0.7)
            .into_iter()
            .map(|(b, r)| rerec(bbreg(b, r)))
            .collect();
        if boxes.is_empty() {
            return Ok(Vec::new());
        }

        // Stage 3: O-Net on 48×48 crops; landmarks relative to the box before regression.
        let (batch, kept) = self.crops(&image, &boxes, 48);
        let (reg, pts, prob) = self.onet(batch);
        let (reg, pts, prob) = (host(reg), host(pts), host(prob));
        let mut stage3 = Vec::new();
        for (j, &i) in kept.iter().enumerate() {
            let score = prob[2 * j + 1];
            if score > self.thresholds[2] {
                let b = boxes[i];
                let (bw, bh) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
                let landmarks: Vec<[f32; 2]> = (0..5)
                    .map(|k| {
                        [
                            bw * pts[10 * j + k] + b[0] - 1.0,
                            bh * pts[10 * j + 5 + k] + b[1] - 1.0,
                        ]
                    })
                    .collect();
                let r = [0, 1, 2, 3].map(|k| reg[4 * j + k]);
                stage3.push((bbreg([b[0], b[1], b[2], b[3], score], r), landmarks));
            }
        }
        Ok(nms_min(stage3, 0.7)
            .into_iter()
            .map(|(b, landmarks)| Detection {
                bbox: [b[0], b[1], b[2], b[3]],
                score: b[4],
                landmarks,
            })
            .collect())
    }
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// Box regression with the +1 size convention.
fn bbreg(b: Cand, r: [f32; 4]) -> Cand {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    [
        b[0] + r[0] * w,
        b[1] + r[1] * h,
        b[2] + r[2] * w,
        b[3] + r[3] * h,
        b[4],
    ]
}

/// Makes a box square around its centre (side = the longer side).
fn rerec(b: Cand) -> Cand {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l, b[4]]
}

/// torchvision `nms`: IoU without the +1 convention, suppress above `threshold`, output in
/// descending score order (stable for ties).
fn nms_union<T: Clone>(items: Vec<(Cand, T)>, threshold: f32) -> Vec<(Cand, T)> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].0[4].total_cmp(&items[a].0[4]));
    let area = |b: &Cand| (b[2] - b[0]) * (b[3] - b[1]);
    let mut keep: Vec<usize> = Vec::new();
    let mut removed = vec![false; items.len()];
    for (pos, &i) in order.iter().enumerate() {
        if removed[i] {
            continue;
        }
        keep.push(i);
        let a = &items[i].0;
        for &j in &order[pos + 1..] {
            let b = &items[j].0;
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            if inter / (area(a) + area(b) - inter) > threshold {
                removed[j] = true;
            }
        }
    }
    keep.into_iter().map(|i| items[i].clone()).collect()
}

/// facenet-pytorch's numpy NMS with the "Min" overlap (+1 areas), highest score first.
fn nms_min<T: Clone>(items: Vec<(Cand, T)>, threshold: f32) -> Vec<(Cand, T)> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].0[4].total_cmp(&items[a].0[4]));
    let area = |b: &Cand| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut out = Vec::new();
    while !order.is_empty() {
        let i = order.remove(0);
        let a = items[i].0;
        order.retain(|&j| {
            let b = &items[j].0;
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + 1.0).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + 1.0).max(0.0);
            w * h / area(&a).min(area(b)) <= threshold
        });
        out.push(items[i].clone());
    }
    out
}
