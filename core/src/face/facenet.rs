//! FaceNet as facenet-pytorch 2.6.0 (`InceptionResnetV1`, the vggface2 weights FastComposer's
//! FaceSim uses) with its face crop: `extract_face` (the MTCNN box truncated to integers, a Pillow
//! crop, a bilinear resize to 160², `fixed_image_standardization`). The network runs from its
//! state dict (conv + BatchNorm(eps 1e-3) + ReLU units, Block35 / Block17 / Block8 residuals with
//! their scales, the two reduction blocks, average pool, `last_linear`, `last_bn`, L2 norm);
//! widths and repeat counts come from the checkpoint.

use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use super::Detection;
use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};
use crate::nn::torch_net::TorchNet;
use crate::{Error, Result};

/// The face crop's side (`MTCNN(image_size=160)`).
pub const FACE_SIZE: usize = 160;

/// The network, from its state dict.
pub struct InceptionResnetV1 {
    net: TorchNet,
    repeats: [usize; 3],
}

/// `nn.MaxPool2d(3, stride=2)`.
fn pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([3, 3]).with_stride([2, 2]))
}

/// `extract_face(img, box, 160, margin=0)` as planar `[3, 160, 160]` network input.
pub fn extract_face(img: &RgbImage, face: &Detection) -> Result<Vec<f32>> {
    let b = face.bbox;
    // int(max(x, 0)) / int(min(x, size)): truncation toward zero.
    let x1 = b[0].max(0.0) as usize;
    let y1 = b[1].max(0.0) as usize;
    let x2 = (b[2].min(img.width as f32) as usize).min(img.width);
    let y2 = (b[3].min(img.height as f32) as usize).min(img.height);
    if x2 <= x1 || y2 <= y1 {
        return Err(Error::Image {
            name: "face".into(),
            reason: format!("an empty face box {b:?}"),
        });
    }
    let mut crop = RgbImage::new(x2 - x1, y2 - y1);
    for y in y1..y2 {
        let src = (y * img.width + x1) * 3;
        let dst = (y - y1) * crop.width * 3;
        crop.data[dst..dst + crop.width * 3].copy_from_slice(&img.data[src..src + crop.width * 3]);
    }
    let face = resize(&crop, FACE_SIZE, FACE_SIZE, Filter::Bilinear);
    let n = FACE_SIZE * FACE_SIZE;
    let mut out = vec![0.0f32; 3 * n];
    for (i, px) in face.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * n + i] = (f32::from(px[c]) - 127.5) / 128.0;
        }
    }
    Ok(out)
}

impl InceptionResnetV1 {
    /// Loads a facenet-pytorch state dict (`20180402-114759-vggface2.pt`; its `logits` head is
    /// not used). `path` names it in errors.
    pub fn load(bytes: &[u8], path: &str, device: &Device) -> Result<Self> {
        let net = TorchNet::load(bytes, path, device)?;
        let count = |prefix: &str| {
            (0..)
                .take_while(|i| net.has(&format!("{prefix}.{i}.conv2d.weight")))
                .count()
        };
        let repeats = [count("repeat_1"), count("repeat_2"), count("repeat_3")];
        if repeats.contains(&0) || !net.has("last_linear.weight") {
            return Err(net.mismatch(
                "not an InceptionResnetV1 state dict (repeat_1..3, last_linear)".into(),
            ));
        }
        Ok(Self { net, repeats })
    }

    fn unit(&self, x: Tensor<4>, name: &str, stride: usize, pad: [usize; 2]) -> Result<Tensor<4>> {
        self.net.unit(x, name, stride, pad)
    }

    /// A residual block's closing 1×1 convolution (with bias), scaled and added.
    fn close(
        &self,
        x: Tensor<4>,
        parts: Vec<Tensor<4>>,
        name: &str,
        scale: f64,
    ) -> Result<Tensor<4>> {
        let w = self.net.get::<4>(&format!("{name}.conv2d.weight"))?;
        let b = self.net.get::<1>(&format!("{name}.conv2d.bias"))?;
        let out = conv2d(
            Tensor::cat(parts, 1),
            w,
            Some(b),
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        Ok(out * scale + x)
    }

    fn block35(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let b0 = self.unit(x.clone(), &format!("{n}.branch0"), 1, [0, 0])?;
        let b1 = self.unit(x.clone(), &format!("{n}.branch1.0"), 1, [0, 0])?;
        let b1 = self.unit(b1, &format!("{n}.branch1.1"), 1, [1, 1])?;
        let b2 = self.unit(x.clone(), &format!("{n}.branch2.0"), 1, [0, 0])?;
        let b2 = self.unit(b2, &format!("{n}.branch2.1"), 1, [1, 1])?;
        let b2 = self.unit(b2, &format!("{n}.branch2.2"), 1, [1, 1])?;
        Ok(relu(self.close(x, vec![b0, b1, b2], n, 0.17)?))
    }

    fn block17(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let b0 = self.unit(x.clone(), &format!("{n}.branch0"), 1, [0, 0])?;
        let b1 = self.unit(x.clone(), &format!("{n}.branch1.0"), 1, [0, 0])?;
        let b1 = self.unit(b1, &format!("{n}.branch1.1"), 1, [0, 3])?;
        let b1 = self.unit(b1, &format!("{n}.branch1.2"), 1, [3, 0])?;
        Ok(relu(self.close(x, vec![b0, b1], n, 0.10)?))
    }

    fn block8(&self, x: Tensor<4>, n: &str, scale: f64, last: bool) -> Result<Tensor<4>> {
        let b0 = self.unit(x.clone(), &format!("{n}.branch0"), 1, [0, 0])?;
        let b1 = self.unit(x.clone(), &format!("{n}.branch1.0"), 1, [0, 0])?;
        let b1 = self.unit(b1, &format!("{n}.branch1.1"), 1, [0, 1])?;
        let b1 = self.unit(b1, &format!("{n}.branch1.2"), 1, [1, 0])?;
        let out = self.close(x, vec![b0, b1], n, scale)?;
        Ok(if last { out } else { relu(out) })
    }

    fn mixed_6a(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let b0 = self.unit(x.clone(), "mixed_6a.branch0", 2, [0, 0])?;
        let b1 = self.unit(x.clone(), "mixed_6a.branch1.0", 1, [0, 0])?;
        let b1 = self.unit(b1, "mixed_6a.branch1.1", 1, [1, 1])?;
        let b1 = self.unit(b1, "mixed_6a.branch1.2", 2, [0, 0])?;
        let b2 = pool(x);
        Ok(Tensor::cat(vec![b0, b1, b2], 1))
    }

    fn mixed_7a(&self, x: Tensor<4>) -> Result<Tensor<4>> {
        let b0 = self.unit(x.clone(), "mixed_7a.branch0.0", 1, [0, 0])?;
        let b0 = self.unit(b0, "mixed_7a.branch0.1", 2, [0, 0])?;
        let b1 = self.unit(x.clone(), "mixed_7a.branch1.0", 1, [0, 0])?;
        let b1 = self.unit(b1, "mixed_7a.branch1.1", 2, [0, 0])?;
        let b2 = self.unit(x.clone(), "mixed_7a.branch2.0", 1, [0, 0])?;
        let b2 = self.unit(b2, "mixed_7a.branch2.1", 1, [1, 1])?;
        let b2 = self.unit(b2, "mixed_7a.branch2.2", 2, [0, 0])?;
        let b3 = pool(x);
        Ok(Tensor::cat(vec![b0, b1, b2, b3], 1))
    }

    /// L2-normalised embeddings of `faces` (each [`extract_face`]'s output).
    pub fn embed(&self, faces: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let n = faces.len();
        let data: Vec<f32> = faces.concat();
        let s = FACE_SIZE;
        let mut x = Tensor::<4>::from_data(TensorData::new(data, [n, 3, s, s]), self.net.device());
        x = self.unit(x, "conv2d_1a", 2, [0, 0])?;
        x = self.unit(x, "conv2d_2a", 1, [0, 0])?;
        x = self.unit(x, "conv2d_2b", 1, [1, 1])?;
        x = pool(x);
        x = self.unit(x, "conv2d_3b", 1, [0, 0])?;
        x = self.unit(x, "conv2d_4a", 1, [0, 0])?;
        x = self.unit(x, "conv2d_4b", 2, [0, 0])?;
        for i in 0..self.repeats[0] {
            x = self.block35(x, &format!("repeat_1.{i}"))?;
        }
        x = self.mixed_6a(x)?;
        for i in 0..self.repeats[1] {
            x = self.block17(x, &format!("repeat_2.{i}"))?;
        }
        x = self.mixed_7a(x)?;
        for i in 0..self.repeats[2] {
            x = self.block8(x, &format!("repeat_3.{i}"), 0.20, false)?;
        }
        x = self.block8(x, "block8", 1.0, true)?;
        let c = x.dims()[1];
        let pooled: Tensor<2> = adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]);
        let w = self.net.get::<2>("last_linear.weight")?; // [512, c]
        let y = self.net.bn(pooled.matmul(w.transpose()), "last_bn")?;
        let dim = y.dims()[1];
        let values = y
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        Ok(values
            .chunks(dim)
            .map(|v| {
                // F.normalize(p=2, eps=1e-12)
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}
