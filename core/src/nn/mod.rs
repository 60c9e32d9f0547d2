//! Layers shared by the UNet and the VAE (diffusers `models/resnet.py`, `models/attention_processor.py`).

pub mod attention;
pub mod embeddings;
pub mod lora;
pub mod resnet;
pub mod sampling;
pub mod torch_net;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::Device;

/// A `k`×`k` convolution with "same" zero padding (k odd), stride 1.
pub fn conv2d(in_channels: usize, out_channels: usize, k: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([in_channels, out_channels], [k, k])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .init(device)
}

/// `torch.nn.GroupNorm(groups, channels, eps)`.
pub fn group_norm(groups: usize, channels: usize, eps: f64, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(eps)
        .init(device)
}
