//! The VAE `Decoder` (diffusers 0.23 `models/vae.py`): latent → image in about [-1, 1].

use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::blocks::{UNetMidBlock2D, UpDecoderBlock2D};
use super::config::AutoencoderKLConfig;
use crate::kernels;
use crate::nn::{conv2d, group_norm};

/// `Decoder`: mid block, then up blocks over the reversed widths.
#[derive(Module, Debug)]
pub struct Decoder {
    pub conv_in: Conv2d,
    pub mid_block: UNetMidBlock2D,
    pub up_blocks: Vec<UpDecoderBlock2D>,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Decoder {
    pub fn new(c: &AutoencoderKLConfig, device: &Device) -> Self {
        let g = c.norm_num_groups;
        let reversed: Vec<usize> = c.block_out_channels.iter().rev().copied().collect();
        Self {
            conv_in: conv2d(c.latent_channels, reversed[0], 3, device),
            mid_block: UNetMidBlock2D::new(reversed[0], g, device),
            up_blocks: (0..reversed.len())
                .map(|i| {
                    let input = if i == 0 { reversed[0] } else { reversed[i - 1] };
                    let last = i + 1 == reversed.len();
                    UpDecoderBlock2D::new(
                        c.layers_per_block + 1,
                        input,
                        reversed[i],
                        !last,
                        g,
                        device,
                    )
                })
                .collect(),
            conv_norm_out: group_norm(g, c.block_out_channels[0], 1e-6, device),
            conv_out: conv2d(c.block_out_channels[0], c.out_channels, 3, device),
        }
    }

    /// # Shapes
    /// - `z`: `[b, latent_channels, h, w]` → `[b, out_channels, h * f, w * f]`
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = self.mid_block.forward(kernels::conv2d(&self.conv_in, z));
        for block in &self.up_blocks {
            x = block.forward(x);
        }
        kernels::conv2d(
            &self.conv_out,
            kernels::group_norm(&self.conv_norm_out, x, true),
        )
    }
}
