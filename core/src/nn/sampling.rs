//! `Downsample2D` and `Upsample2D` with convolutions (diffusers 0.23 `models/resnet.py`).

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use super::conv2d;
use crate::kernels;

/// A stride-2 3×3 convolution.
#[derive(Module, Debug)]
pub struct Downsample2D {
    pub conv: Conv2d,
}

impl Downsample2D {
    /// `padding` is the symmetric conv padding (1 in the UNet); with 0 (the VAE) the input is
    /// padded by one pixel on the right and bottom only, as diffusers does.
    pub fn new(in_channels: usize, out_channels: usize, padding: usize, device: &Device) -> Self {
        let pad = if padding == 0 {
            PaddingConfig2d::Explicit(0, 0, 1, 1)
        } else {
            PaddingConfig2d::Explicit(padding, padding, padding, padding)
        };
        Self {
            conv: Conv2dConfig::new([in_channels, out_channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(pad)
                .init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, c, h, w]` → `[b, out, h/2, w/2]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// Nearest-neighbour 2× upsampling followed by a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample2D {
    pub conv: Conv2d,
}

impl Upsample2D {
    /// Builds the block.
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            conv: conv2d(in_channels, out_channels, 3, device),
        }
    }

    /// `output_size` overrides the 2× size (the UNet passes the skip connection's size).
    ///
    /// # Shapes
    /// - `x`: `[b, c, h, w]` → `[b, out, 2h, 2w]` (or `output_size`)
    pub fn forward(&self, x: Tensor<4>, output_size: Option<[usize; 2]>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let size = output_size.unwrap_or([2 * h, 2 * w]);
        let x = interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Nearest)
                .with_align_corners(false)
                .with_output_size(size),
        );
        kernels::conv2d(&self.conv, x)
    }
}
