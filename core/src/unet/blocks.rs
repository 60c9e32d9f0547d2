//! The UNet's blocks (diffusers 0.23 `models/unet_2d_blocks.py`). `CrossAttnDownBlock2D` and
//! `DownBlock2D` differ only in having transformers after each ResNet, so one struct serves
//! both (an empty `attentions` list is a plain block); likewise for the up blocks.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::transformer::{Transformer2DConfig, Transformer2DModel};
use crate::nn::resnet::{ResnetBlock2D, ResnetBlock2DConfig};
use crate::nn::sampling::{Downsample2D, Upsample2D};

/// What every block of one UNet shares.
#[derive(Debug, Clone, Copy)]
pub struct BlockSettings {
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub cross_attention_dim: usize,
    pub use_linear_projection: bool,
}

impl BlockSettings {
    fn resnet(&self, i: usize, o: usize, scale: f64, device: &Device) -> ResnetBlock2D {
        ResnetBlock2DConfig {
            in_channels: i,
            out_channels: o,
            temb_channels: Some(self.temb_channels),
            groups: self.groups,
            eps: self.eps,
            output_scale_factor: scale,
        }
        .init(device)
    }

    /// One transformer per ResNet for cross-attention blocks (`Some((heads, layers))`), none
    /// for plain ones.
    fn transformers(
        &self,
        count: usize,
        channels: usize,
        cross_attention: Option<(usize, usize)>,
        device: &Device,
    ) -> Vec<Transformer2DModel> {
        match cross_attention {
            Some((heads, layers)) => (0..count)
                .map(|_| self.transformer(channels, heads, layers, device))
                .collect(),
            None => Vec::new(),
        }
    }

    fn transformer(
        &self,
        channels: usize,
        heads: usize,
        layers: usize,
        device: &Device,
    ) -> Transformer2DModel {
        Transformer2DConfig {
            heads,
            dim_head: channels / heads,
            in_channels: channels,
            layers,
            cross_attention_dim: self.cross_attention_dim,
            groups: self.groups,
            use_linear_projection: self.use_linear_projection,
        }
        .init(device)
    }
}

/// One down block's shape.
#[derive(Debug, Clone, Copy)]
pub struct DownBlockConfig {
    pub layers: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// `Some((heads, transformer layers))` for `CrossAttnDownBlock2D`.
    pub cross_attention: Option<(usize, usize)>,
    pub downsample: bool,
    pub downsample_padding: usize,
}

/// `CrossAttnDownBlock2D` / `DownBlock2D`.
#[derive(Module, Debug)]
pub struct DownBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<Transformer2DModel>,
    pub downsamplers: Vec<Downsample2D>,
}

impl DownBlock {
    pub fn new(c: &DownBlockConfig, s: &BlockSettings, device: &Device) -> Self {
        let o = c.out_channels;
        Self {
            resnets: (0..c.layers)
                .map(|l| s.resnet(if l == 0 { c.in_channels } else { o }, o, 1.0, device))
                .collect(),
            attentions: s.transformers(c.layers, o, c.cross_attention, device),
            downsamplers: c
                .downsample
                .then(|| Downsample2D::new(o, o, c.downsample_padding, device))
                .into_iter()
                .collect(),
        }
    }

    /// Returns the output and the states the up path concatenates (one per ResNet, plus the
    /// downsampled output).
    ///
    /// # Shapes
    /// - `x`: `[b, in, h, w]` → `[b, out, h', w']`
    pub fn forward(
        &self,
        mut x: Tensor<4>,
        temb: Tensor<2>,
        context: Tensor<3>,
    ) -> (Tensor<4>, Vec<Tensor<4>>) {
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (l, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(x, Some(temb.clone()));
            if let Some(attn) = self.attentions.get(l) {
                x = attn.forward(x, context.clone());
            }
            states.push(x.clone());
        }
        for down in &self.downsamplers {
            x = down.forward(x);
            states.push(x.clone());
        }
        (x, states)
    }
}

/// `UNetMidBlock2DCrossAttn`: ResNet, then (transformer, ResNet) pairs.
#[derive(Module, Debug)]
pub struct MidBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<Transformer2DModel>,
}

impl MidBlock {
    pub fn new(
        channels: usize,
        heads: usize,
        layers: usize,
        scale: f64,
        s: &BlockSettings,
        device: &Device,
    ) -> Self {
        Self {
            resnets: (0..2)
                .map(|_| s.resnet(channels, channels, scale, device))
                .collect(),
            attentions: vec![s.transformer(channels, heads, layers, device)],
        }
    }

    /// # Shapes
    /// - `x`: `[b, c, h, w]` → same
    pub fn forward(&self, x: Tensor<4>, temb: Tensor<2>, context: Tensor<3>) -> Tensor<4> {
        let mut x = self.resnets[0].forward(x, Some(temb.clone()));
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = resnet.forward(attn.forward(x, context.clone()), Some(temb.clone()));
        }
        x
    }
}

/// One up block's shape (names as in diffusers' `get_up_block`).
#[derive(Debug, Clone, Copy)]
pub struct UpBlockConfig {
    pub layers: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub prev_output_channels: usize,
    pub cross_attention: Option<(usize, usize)>,
    pub upsample: bool,
}

/// `CrossAttnUpBlock2D` / `UpBlock2D`.
#[derive(Module, Debug)]
pub struct UpBlock {
    pub resnets: Vec<ResnetBlock2D>,
    pub attentions: Vec<Transformer2DModel>,
    pub upsamplers: Vec<Upsample2D>,
}

impl UpBlock {
    pub fn new(c: &UpBlockConfig, s: &BlockSettings, device: &Device) -> Self {
        let o = c.out_channels;
        Self {
            resnets: (0..c.layers)
                .map(|l| {
                    // The last ResNet takes the skip from the previous (wider) level.
                    let skip = if l + 1 == c.layers { c.in_channels } else { o };
                    let input = if l == 0 { c.prev_output_channels } else { o };
                    s.resnet(input + skip, o, 1.0, device)
                })
                .collect(),
            attentions: s.transformers(c.layers, o, c.cross_attention, device),
            upsamplers: c
                .upsample
                .then(|| Upsample2D::new(o, o, device))
                .into_iter()
                .collect(),
        }
    }

    /// `skips` are consumed from the back; `upsample_size` is the next skip's spatial size.
    ///
    /// # Shapes
    /// - `x`: `[b, prev, h, w]` → `[b, out, h', w']`
    pub fn forward(
        &self,
        mut x: Tensor<4>,
        skips: &mut Vec<Tensor<4>>,
        temb: Tensor<2>,
        context: Tensor<3>,
        upsample_size: Option<[usize; 2]>,
    ) -> Tensor<4> {
        for (l, resnet) in self.resnets.iter().enumerate() {
            let skip = skips
                .pop()
                .expect("the down path provides one skip per up ResNet");
            x = resnet.forward(Tensor::cat(vec![x, skip], 1), Some(temb.clone()));
            if let Some(attn) = self.attentions.get(l) {
                x = attn.forward(x, context.clone());
            }
        }
        for up in &self.upsamplers {
            x = up.forward(x, upsample_size);
        }
        x
    }
}
