//! Sinusoidal timestep features and the timestep MLP (diffusers 0.23 `models/embeddings.py`).

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// `get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift)` with max period
/// 10000 and scale 1.
///
/// # Shapes
/// - `timesteps`: `[b]` → `[b, dim]`
pub fn timestep_embedding(
    timesteps: Tensor<1>,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Tensor<2> {
    let device = timesteps.device();
    let half = dim / 2;
    // exp(-ln(10000) * i / (half - shift)) for i in 0..half
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f64.ln()) * i as f64 / (half as f64 - freq_shift)).exp() as f32)
        .collect();
    let freqs = Tensor::<1>::from_floats(freqs.as_slice(), &device).unsqueeze_dim::<2>(0);
    let b = timesteps.dims()[0];
    // [b] -> [b, 1] * [1, half] -> [b, half]
    let args = timesteps.reshape([b, 1]) * freqs;
    let (sin, cos) = (args.clone().sin(), args.cos());
    let emb = if flip_sin_to_cos {
        Tensor::cat(vec![cos, sin], 1)
    } else {
        Tensor::cat(vec![sin, cos], 1)
    };
    if dim % 2 == 1 {
        // Odd widths get a zero column on the right.
        emb.pad([(0, 0), (0, 1)], burn::tensor::ops::PadMode::Constant(0.0))
    } else {
        emb
    }
}

/// `TimestepEmbedding`: linear → SiLU → linear.
#[derive(Module, Debug)]
pub struct TimestepEmbedding {
    pub linear_1: Linear,
    pub linear_2: Linear,
}

impl TimestepEmbedding {
    pub fn new(in_channels: usize, time_embed_dim: usize, device: &Device) -> Self {
        Self {
            linear_1: LinearConfig::new(in_channels, time_embed_dim).init(device),
            linear_2: LinearConfig::new(time_embed_dim, time_embed_dim).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[b, in]` → `[b, time_embed_dim]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear_2.forward(silu(self.linear_1.forward(x)))
    }
}
