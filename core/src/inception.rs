//! The FID network: pytorch-fid's `InceptionV3` (the TensorFlow FID Inception's weights,
//! `pt_inception-2015-12-05-6726825d.pth`) up to the final average pool, from its state dict
//! (torchvision `Inception3` keys): the stem, Mixed_5b–5d (FIDInceptionA: the pool branch's
//! average leaves the padding out), Mixed_6a, 6b–6e (FIDInceptionC, the same), Mixed_7a, 7b
//! (FIDInceptionE_1, the same) and 7c (FIDInceptionE_2: a max pool), the 2048 pool features.
//! Input as pytorch-fid: `ToTensor` (÷255), bilinear resize to 299² (align_corners False, no
//! antialias), `2x − 1`.

use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::image::RgbImage;
use crate::image::torch_resize::resize_bilinear;
use crate::nn::torch_net::TorchNet;
use crate::{Error, Result};

/// pytorch-fid's input side.
pub const SIZE: usize = 299;

pub struct FidInception {
    net: TorchNet,
}

fn max_pool(x: Tensor<4>, stride: usize, pad: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([3, 3])
            .with_stride([stride, stride])
            .with_padding([pad, pad]),
    )
}

/// TensorFlow's 3×3 average pool (stride 1, padding 1, the padding not counted).
fn avg_pool(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}

impl FidInception {
    pub fn load(bytes: &[u8], path: &str, device: &Device) -> Result<Self> {
        let net = TorchNet::load(bytes, path, device)?;
        if !net.has("Mixed_7c.branch_pool.conv.weight") {
            return Err(net.mismatch(
                "not an Inception-v3 state dict (Mixed_7c missing): use pytorch-fid's pt_inception-2015-12-05-6726825d.pth".into(),
            ));
        }
        Ok(Self { net })
    }

    fn u(&self, x: Tensor<4>, name: &str, stride: usize, pad: [usize; 2]) -> Result<Tensor<4>> {
        self.net.unit(x, name, stride, pad)
    }

    fn a(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let b1 = self.u(x.clone(), &format!("{n}.branch1x1"), 1, [0, 0])?;
        let b5 = self.u(x.clone(), &format!("{n}.branch5x5_1"), 1, [0, 0])?;
        let b5 = self.u(b5, &format!("{n}.branch5x5_2"), 1, [2, 2])?;
        let b3 = self.u(x.clone(), &format!("{n}.branch3x3dbl_1"), 1, [0, 0])?;
        let b3 = self.u(b3, &format!("{n}.branch3x3dbl_2"), 1, [1, 1])?;
        let b3 = self.u(b3, &format!("{n}.branch3x3dbl_3"), 1, [1, 1])?;
        let bp = self.u(avg_pool(x), &format!("{n}.branch_pool"), 1, [0, 0])?;
        Ok(Tensor::cat(vec![b1, b5, b3, bp], 1))
    }

    fn b(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let b3 = self.u(x.clone(), &format!("{n}.branch3x3"), 2, [0, 0])?;
        let bd = self.u(x.clone(), &format!("{n}.branch3x3dbl_1"), 1, [0, 0])?;
        let bd = self.u(bd, &format!("{n}.branch3x3dbl_2"), 1, [1, 1])?;
        let bd = self.u(bd, &format!("{n}.branch3x3dbl_3"), 2, [0, 0])?;
        Ok(Tensor::cat(vec![b3, bd, max_pool(x, 2, 0)], 1))
    }

    fn c(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let (row, col) = ([0, 3], [3, 0]);
        let b1 = self.u(x.clone(), &format!("{n}.branch1x1"), 1, [0, 0])?;
        let b7 = self.u(x.clone(), &format!("{n}.branch7x7_1"), 1, [0, 0])?;
        let b7 = self.u(b7, &format!("{n}.branch7x7_2"), 1, row)?;
        let b7 = self.u(b7, &format!("{n}.branch7x7_3"), 1, col)?;
        let mut bd = self.u(x.clone(), &format!("{n}.branch7x7dbl_1"), 1, [0, 0])?;
        for (k, pad) in [(2, col), (3, row), (4, col), (5, row)] {
            bd = self.u(bd, &format!("{n}.branch7x7dbl_{k}"), 1, pad)?;
        }
        let bp = self.u(avg_pool(x), &format!("{n}.branch_pool"), 1, [0, 0])?;
        Ok(Tensor::cat(vec![b1, b7, bd, bp], 1))
    }

    fn d(&self, x: Tensor<4>, n: &str) -> Result<Tensor<4>> {
        let b3 = self.u(x.clone(), &format!("{n}.branch3x3_1"), 1, [0, 0])?;
        let b3 = self.u(b3, &format!("{n}.branch3x3_2"), 2, [0, 0])?;
        let b7 = self.u(x.clone(), &format!("{n}.branch7x7x3_1"), 1, [0, 0])?;
        let b7 = self.u(b7, &format!("{n}.branch7x7x3_2"), 1, [0, 3])?;
        let b7 = self.u(b7, &format!("{n}.branch7x7x3_3"), 1, [3, 0])?;
        let b7 = self.u(b7, &format!("{n}.branch7x7x3_4"), 2, [0, 0])?;
        Ok(Tensor::cat(vec![b3, b7, max_pool(x, 2, 0)], 1))
    }

    /// FIDInceptionE_1 (`max = false`) or FIDInceptionE_2 (`max = true`).
    fn e(&self, x: Tensor<4>, n: &str, max: bool) -> Result<Tensor<4>> {
        let b1 = self.u(x.clone(), &format!("{n}.branch1x1"), 1, [0, 0])?;
        let b3 = self.u(x.clone(), &format!("{n}.branch3x3_1"), 1, [0, 0])?;
        let b3 = Tensor::cat(
            vec![
                self.u(b3.clone(), &format!("{n}.branch3x3_2a"), 1, [0, 1])?,
                self.u(b3, &format!("{n}.branch3x3_2b"), 1, [1, 0])?,
            ],
            1,
        );
        let bd = self.u(x.clone(), &format!("{n}.branch3x3dbl_1"), 1, [0, 0])?;
        let bd = self.u(bd, &format!("{n}.branch3x3dbl_2"), 1, [1, 1])?;
        let bd = Tensor::cat(
            vec![
                self.u(bd.clone(), &format!("{n}.branch3x3dbl_3a"), 1, [0, 1])?,
                self.u(bd, &format!("{n}.branch3x3dbl_3b"), 1, [1, 0])?,
            ],
            1,
        );
        let pooled = if max { max_pool(x, 1, 1) } else { avg_pool(x) };
        let bp = self.u(pooled, &format!("{n}.branch_pool"), 1, [0, 0])?;
        Ok(Tensor::cat(vec![b1, b3, bd, bp], 1))
    }

    /// pytorch-fid's input of one image: planar `[3, 299, 299]` in [-1, 1].
    pub fn preprocess(img: &RgbImage) -> Vec<f32> {
        let (w, h) = (img.width, img.height);
        let mut planes = vec![0f32; 3 * w * h];
        for (i, px) in img.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planes[c * w * h + i] = f32::from(px[c]) / 255.0;
            }
        }
        resize_bilinear(&planes, h, w, SIZE, SIZE)
            .into_iter()
            .map(|v| 2.0 * v - 1.0)
            .collect()
    }

    /// The pool features (2048 for the real network) of each image.
    pub fn features(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let n = images.len();
        let data: Vec<f32> = images.iter().flat_map(Self::preprocess).collect();
        let mut x =
            Tensor::<4>::from_data(TensorData::new(data, [n, 3, SIZE, SIZE]), self.net.device());
        x = self.u(x, "Conv2d_1a_3x3", 2, [0, 0])?;
        x = self.u(x, "Conv2d_2a_3x3", 1, [0, 0])?;
        x = self.u(x, "Conv2d_2b_3x3", 1, [1, 1])?;
        x = max_pool(x, 2, 0);
        x = self.u(x, "Conv2d_3b_1x1", 1, [0, 0])?;
        x = self.u(x, "Conv2d_4a_3x3", 1, [0, 0])?;
        x = max_pool(x, 2, 0);
        for m in ["Mixed_5b", "Mixed_5c", "Mixed_5d"] {
            x = self.a(x, m)?;
        }
        x = self.b(x, "Mixed_6a")?;
        for m in ["Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"] {
            x = self.c(x, m)?;
        }
        x = self.d(x, "Mixed_7a")?;
        x = self.e(x, "Mixed_7b", false)?;
        x = self.e(x, "Mixed_7c", true)?;
        let c = x.dims()[1];
        let pooled: Tensor<2> = adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]);
        let values = pooled
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        Ok(values.chunks(c).map(<[f32]>::to_vec).collect())
    }
}
