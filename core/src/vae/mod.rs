//! `AutoencoderKL` (diffusers 0.23 `models/autoencoder_kl.py`): the SD VAE, encode and decode.

pub mod blocks;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod ldm;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Tensor};

pub use config::AutoencoderKLConfig;
use decoder::Decoder;
use encoder::Encoder;

use crate::Result;
use crate::nn::conv2d;
use crate::weights::{
    LoadSpec, WeightSource, keymap, load_folder_model, load_with_rules, single_file,
};

/// The variational autoencoder of Stable Diffusion.
#[derive(Module, Debug)]
pub struct AutoencoderKL {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub quant_conv: Conv2d,
    pub post_quant_conv: Conv2d,
    #[module(skip)]
    pub scaling_factor: f64,
}

/// The encoder's diagonal Gaussian over latents.
pub struct LatentDist {
    /// `[b, latent_channels, h, w]`
    pub mean: Tensor<4>,
    /// Log-variance clamped to [-30, 20], as diffusers does.
    pub logvar: Tensor<4>,
}

impl LatentDist {
    /// `mean + std * noise` with standard-normal `noise` of the mean's shape.
    pub fn sample(&self, noise: Tensor<4>) -> Tensor<4> {
        self.mean.clone() + (self.logvar.clone() * 0.5).exp() * noise
    }
}

impl AutoencoderKL {
    /// Builds a randomly initialised VAE of `config`'s dimensions.
    pub fn new(config: &AutoencoderKLConfig, device: &Device) -> Self {
        let l = config.latent_channels;
        Self {
            encoder: Encoder::new(config, device),
            decoder: Decoder::new(config, device),
            quant_conv: conv2d(2 * l, 2 * l, 1, device),
            post_quant_conv: conv2d(l, l, 1, device),
            scaling_factor: config.scaling_factor,
        }
    }

    /// Loads `{dir}/config.json` and `{dir}/diffusion_pytorch_model[.variant].safetensors`.
    pub fn load(
        source: &dyn WeightSource,
        dir: &str,
        variant: Option<&str>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        load_folder_model(
            source,
            dir,
            "diffusion_pytorch_model",
            variant,
            AutoencoderKLConfig::from_json,
            |config| Self::new(config, device),
            &LoadSpec {
                remap: keymap::VAE_REMAP,
                ignore_unused: &[],
                dtype,
            },
        )
    }

    /// Loads the VAE of a single-file SD1.x checkpoint (`first_stage_model.*` keys) with the
    /// given config ([`AutoencoderKLConfig::sd15`] for SD1.5).
    pub fn load_single_file(
        source: &dyn WeightSource,
        path: &str,
        config: &AutoencoderKLConfig,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let ignore = single_file::other_parts(single_file::VAE_PREFIX);
        load_with_rules(
            Self::new(config, device),
            source,
            path,
            &ldm::ldm_vae_rules(config),
            &ignore,
            dtype,
        )
    }

    /// The latent distribution of an image in [-1, 1].
    ///
    /// # Shapes
    /// - `image`: `[b, in_channels, H, W]` → mean/logvar `[b, latent_channels, H/f, W/f]`
    pub fn encode(&self, image: Tensor<4>) -> LatentDist {
        let out_dtype = image.dtype();
        let moments = self
            .quant_conv
            .forward(self.encoder.forward(image.cast(self.dtype())))
            .cast(out_dtype);
        let [b, c, h, w] = moments.dims();
        let mean = moments.clone().slice([0..b, 0..c / 2, 0..h, 0..w]);
        let logvar = moments
            .slice([0..b, c / 2..c, 0..h, 0..w])
            .clamp(-30.0, 20.0);
        LatentDist { mean, logvar }
    }

    /// Decodes unscaled latents (diffusion latents divided by the scaling factor).
    ///
    /// # Shapes
    /// - `z`: `[b, latent_channels, h, w]` → `[b, out_channels, h*f, w*f]`, about [-1, 1]
    pub fn decode(&self, z: Tensor<4>) -> Tensor<4> {
        let out_dtype = z.dtype();
        self.decoder
            .forward(self.post_quant_conv.forward(z.cast(self.dtype())))
            .cast(out_dtype)
    }

    /// The float type of the weights (what the networks compute in; the caller's tensors are
    /// cast in and out).
    pub fn dtype(&self) -> DType {
        self.post_quant_conv.weight.val().dtype()
    }

    /// Decodes diffusion latents (as the denoiser produces them): `decode(latents / scaling_factor)`.
    pub fn decode_latents(&self, latents: Tensor<4>) -> Tensor<4> {
        self.decode(latents / self.scaling_factor)
    }
}
