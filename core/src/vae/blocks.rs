//! The VAE's blocks (diffusers 0.23 `models/unet_2d_blocks.py`): `DownEncoderBlock2D`,
//! `UpDecoderBlock2D`, and `UNetMidBlock2D` with its single-head spatial self-attention.

use burn::module::Module;
use burn::nn::{GroupNorm, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::kernels;
use crate::nn::attention::multi_head_attention;
use crate::nn::group_norm;
use crate::nn::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use crate::nn::sampling::{Downsample2D, Upsample2D};

/// The VAE's ResNet settings: no time embedding, eps 1e-6.
fn resnet(i: usize, o: usize, groups: usize, device: &Device) -> ResnetBlock2D {
    ResnetBlock2DConfig {
        in_channels: i,
        out_channels: o,
        temb_channels: None,
        groups,
        eps: 1e-6,
        output_scale_factor: 1.0,
    }
    .init(device)
}

/// `layers` ResNets from `i` to `o` channels.
fn resnets(
    layers: usize,
    i: usize,
    o: usize,
    groups: usize,
    device: &Device,
) -> Vec<ResnetBlock2D> {
    (0..layers)
        .map(|l| resnet(if l == 0 { i } else { o }, o, groups, device))
        .collect()
}

/// `DownEncoderBlock2D`: ResNets, then an optional stride-2 downsampler.
#[derive(Module, Debug)]
pub struct DownEncoderBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    pub downsamplers: Vec<Downsample2D>,
}

impl DownEncoderBlock2D {
    pub fn new(
        layers: usize,
        i: usize,
        o: usize,
        downsample: bool,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            resnets: resnets(layers, i, o, groups, device),
            downsamplers: downsample
                .then(|| Downsample2D::new(o, o, 0, device))
                .into_iter()
                .collect(),
        }
    }

    /// # Shapes
    /// - `x`: `[b, in, h, w]` → `[b, out, h', w']`
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for r in &self.resnets {
            x = r.forward(x, None);
        }
        for d in &self.downsamplers {
            x = d.forward(x);
        }
        x
    }
}

/// `UpDecoderBlock2D`: ResNets, then an optional 2× upsampler.
#[derive(Module, Debug)]
pub struct UpDecoderBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    pub upsamplers: Vec<Upsample2D>,
}

impl UpDecoderBlock2D {
    pub fn new(
        layers: usize,
        i: usize,
        o: usize,
        upsample: bool,
        groups: usize,
        device: &Device,
    ) -> Self {
        Self {
            resnets: resnets(layers, i, o, groups, device),
            upsamplers: upsample
                .then(|| Upsample2D::new(o, o, device))
                .into_iter()
                .collect(),
        }
    }

    /// # Shapes
    /// - `x`: `[b, in, h, w]` → `[b, out, h', w']`
    pub fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for r in &self.resnets {
            x = r.forward(x, None);
        }
        for u in &self.upsamplers {
            x = u.forward(x, None);
        }
        x
    }
}

/// `UNetMidBlock2D` as the VAE builds it: ResNet, (attention, ResNet).
#[derive(Module, Debug)]
pub struct UNetMidBlock2D {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<VaeAttention>,
}

impl UNetMidBlock2D {
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| resnet(channels, channels, groups, device))
                .collect(),
            attentions: vec![VaeAttention::new(channels, groups, device)],
        }
    }

    /// # Shapes
    /// - `x`: `[b, c, h, w]` → same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, None);
        for (attn, r) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = r.forward(attn.forward(x), None);
        }
        x
    }
}

/// diffusers `Attention` as the VAE configures it: group norm, one head spanning all channels,
/// residual connection (`to_out.0` in checkpoints is `to_out` here, see the key map).
#[derive(Module, Debug)]
pub struct VaeAttention {
    pub group_norm: GroupNorm,
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
}

impl VaeAttention {
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        let linear = || LinearConfig::new(channels, channels).init(device);
        Self {
            group_norm: group_norm(groups, channels, 1e-6, device),
            to_q: linear(),
            to_k: linear(),
            to_v: linear(),
            to_out: linear(),
        }
    }

    /// # Shapes
    /// - `x`: `[b, c, h, w]` → same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        // [b, c, h, w] -> [b, h*w, c]
        let hs = kernels::group_norm(&self.group_norm, x.clone(), false)
            .reshape([b, c, h * w])
            .swap_dims(1, 2);
        let out = multi_head_attention(
            self.to_q.forward(hs.clone()),
            self.to_k.forward(hs.clone()),
            self.to_v.forward(hs),
            1,
        );
        // [b, h*w, c] -> [b, c, h, w]
        let out = self
            .to_out
            .forward(out)
            .swap_dims(1, 2)
            .reshape([b, c, h, w]);
        out + x
    }
}
