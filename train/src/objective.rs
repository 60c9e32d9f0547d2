//! The noise-prediction loss (official `train.py:56-73`): the mean squared error of the
//! predicted noise, with both prediction and target multiplied by the person's foreground
//! mask (`WithoutBackground` resized to the latent grid) on the steps whose coin says so.
//! Masked elements count in the mean.

use burn::tensor::{Tensor, TensorData};

use consistentid_core::image::torch_resize::resize_bilinear;

/// `WithoutBackground` masks at image resolution, `[b, h, w]` in {0, 1}.
#[derive(Debug, Clone)]
pub struct ForegroundMasks {
    pub masks: Vec<f32>,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
}

impl ForegroundMasks {
    /// Resized to the latent grid (plain bilinear, as `F.interpolate` without antialias).
    ///
    /// # Shapes
    /// → `[b, 1, lh, lw]` on `device`
    pub fn at_latent(&self, lh: usize, lw: usize, device: &burn::tensor::Device) -> Tensor<4> {
        let resized = resize_bilinear(&self.masks, self.height, self.width, lh, lw);
        Tensor::from_data(TensorData::new(resized, [self.batch, 1, lh, lw]), device)
    }
}

/// # Shapes
/// - `pred`, `noise`: `[b, c, h, w]`; `foreground`: `[b, 1, h, w]` → `[1]`
pub fn noise_loss(pred: Tensor<4>, noise: Tensor<4>, foreground: Option<Tensor<4>>) -> Tensor<1> {
    let (pred, noise) = match foreground {
        Some(m) => (pred * m.clone(), noise * m),
        None => (pred, noise),
    };
    (pred - noise).square().mean()
}
