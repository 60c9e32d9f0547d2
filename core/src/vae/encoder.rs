//! The VAE `Encoder` (diffusers 0.23 `models/vae.py`): image → latent mean and log-variance.

use burn::module::Module;
use burn::nn::GroupNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::blocks::{DownEncoderBlock2D, UNetMidBlock2D};
use super::config::AutoencoderKLConfig;
use crate::kernels;
use crate::nn::{conv2d, group_norm};

/// `Encoder` with `double_z`: outputs `2 * latent_channels` channels.
#[derive(Module, Debug)]
pub struct Encoder {
    pub conv_in: Conv2d,
    pub down_blocks: Vec<DownEncoderBlock2D>,
    pub mid_block: UNetMidBlock2D,
    pub conv_norm_out: GroupNorm,
    pub conv_out: Conv2d,
}

impl Encoder {
    pub fn new(c: &AutoencoderKLConfig, device: &Device) -> Self {
        let boc = &c.block_out_channels;
        let g = c.norm_num_groups;
        let last = boc[boc.len() - 1];
        Self {
            conv_in: conv2d(c.in_channels, boc[0], 3, device),
            down_blocks: (0..boc.len())
                .map(|i| {
                    let input = if i == 0 { boc[0] } else { boc[i - 1] };
                    DownEncoderBlock2D::new(
                        c.layers_per_block,
                        input,
                        boc[i],
                        i + 1 < boc.len(),
                        g,
                        device,
                    )
                })
                .collect(),
            mid_block: UNetMidBlock2D::new(last, g, device),
            conv_norm_out: group_norm(g, last, 1e-6, device),
            conv_out: conv2d(last, 2 * c.latent_channels, 3, device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, in_channels, H, W]` → `[b, 2 * latent_channels, H / f, W / f]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv_in.forward(x);
        for block in &self.down_blocks {
            x = block.forward(x);
        }
        let x = self.mid_block.forward(x);
        self.conv_out
            .forward(kernels::group_norm(&self.conv_norm_out, x, true))
    }
}
