//! `LoRALinearLayer` (diffusers 0.23 `models/lora.py`): `up(down(x))`, no bias, no alpha.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// A low-rank delta added to a frozen linear layer's output.
#[derive(Module, Debug)]
pub struct LoraLinear {
    pub down: Linear,
    pub up: Linear,
}

impl LoraLinear {
    /// `down`: `in → rank`, `up`: `rank → out`.
    pub fn new(in_features: usize, out_features: usize, rank: usize, device: &Device) -> Self {
        Self {
            down: LinearConfig::new(in_features, rank)
                .with_bias(false)
                .init(device),
            up: LinearConfig::new(rank, out_features)
                .with_bias(false)
                .init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, n, in]` → `[b, n, out]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.up.forward(self.down.forward(x))
    }
}
