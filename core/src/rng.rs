//! Seeded standard-normal noise generated on the CPU, so a seed gives the same initial latents
//! on every backend (CUDA, WebGPU, CPU). It does not reproduce torch's generator: to compare
//! with diffusers, inject the latents instead.

use burn::tensor::{Device, Tensor, TensorData};

/// SplitMix64 with Box–Muller: small, portable and exactly reproducible.
#[derive(Debug, Clone)]
pub struct NoiseRng {
    state: u64,
    spare: Option<f64>,
}

impl NoiseRng {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64).ceil() as usize).clamp(1, n) - 1
    }

    /// One standard-normal sample.
    pub fn normal(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }

    /// A standard-normal tensor of `shape`.
    pub fn tensor<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.normal() as f32).collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}

#[cfg(test)]
mod tests {
    use super::NoiseRng;

    #[test]
    fn same_seed_same_noise_and_roughly_standard() {
        let (mut a, mut b) = (NoiseRng::new(42), NoiseRng::new(42));
        let xs: Vec<f64> = (0..20000).map(|_| a.normal()).collect();
        assert!(
            xs.iter()
                .zip((0..20000).map(|_| b.normal()))
                .all(|(x, y)| *x == y)
        );
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
        assert_ne!(NoiseRng::new(1).normal(), NoiseRng::new(2).normal());
    }
}
