//! `ResnetBlock2D` (diffusers 0.23 `models/resnet.py`), "default" time-embedding norm.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

use super::{conv2d, group_norm};
use crate::kernels;

/// Dimensions of one residual block.
#[derive(Debug, Clone, Copy)]
pub struct ResnetBlock2DConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Width of the time embedding; `None` in the VAE.
    pub temb_channels: Option<usize>,
    pub groups: usize,
    pub eps: f64,
    pub output_scale_factor: f64,
}

impl ResnetBlock2DConfig {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> ResnetBlock2D {
        let (i, o) = (self.in_channels, self.out_channels);
        ResnetBlock2D {
            norm1: group_norm(self.groups, i, self.eps, device),
            conv1: conv2d(i, o, 3, device),
            time_emb_proj: self
                .temb_channels
                .map(|t| LinearConfig::new(t, o).init(device)),
            norm2: group_norm(self.groups, o, self.eps, device),
            conv2: conv2d(o, o, 3, device),
            // A 1×1 projection of the input when the width changes.
            conv_shortcut: (i != o).then(|| conv2d(i, o, 1, device)),
            output_scale_factor: self.output_scale_factor,
        }
    }
}

/// GroupNorm → SiLU → conv, twice, with the time embedding added in between, plus a residual.
#[derive(Module, Debug)]
pub struct ResnetBlock2D {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub time_emb_proj: Option<Linear>,
    pub norm2: GroupNorm,
    pub conv2: Conv2d,
    pub conv_shortcut: Option<Conv2d>,
    #[module(skip)]
    pub output_scale_factor: f64,
}

impl ResnetBlock2D {
    /// # Shapes
    /// - `x`: `[b, in, h, w]`, `temb`: `[b, temb_channels]` → `[b, out, h, w]`
    pub fn forward(&self, x: Tensor<4>, temb: Option<Tensor<2>>) -> Tensor<4> {
        let h = kernels::conv2d(
            &self.conv1,
            kernels::group_norm(&self.norm1, x.clone(), true),
        );
        let h = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(t)) => {
                // [b, out] -> [b, out, 1, 1]
                let t = proj
                    .forward(silu(t))
                    .unsqueeze_dim::<3>(2)
                    .unsqueeze_dim::<4>(3);
                h + t
            }
            _ => h,
        };
        let h = kernels::conv2d(&self.conv2, kernels::group_norm(&self.norm2, h, true));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(x),
            None => x,
        };
        let out = shortcut + h;
        if self.output_scale_factor == 1.0 {
            out
        } else {
            out / self.output_scale_factor
        }
    }
}
