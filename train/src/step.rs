//! One training step's forward pass (official `ConsistentID.forward`, `train.py:41-91`): the ID
//! tokens and the fused prompt, the UNet's noise prediction on the noised latents, and the
//! losses. The frozen encoders' outputs (VAE latents, CLIP states, text embeddings) come in
//! already computed; randomness (noise, timesteps, coins) comes in drawn.

use burn::tensor::{Tensor, TensorData};
use consistentid_core::scheduler::ForwardProcess;
use consistentid_core::unet::attention::AttentionProbe;

use crate::localization::{FacialTargets, localization_loss};
use crate::network::Network;
use crate::objective::{ForegroundMasks, noise_loss};
use crate::{Result, TrainError};

/// A batch after the frozen encoders, with its randomness drawn.
#[derive(Debug, Clone)]
pub struct StepInputs {
    /// `[b, 4, h, w]`: the VAE's latent sample times the scaling factor.
    pub latents: Tensor<4>,
    /// `[b, 4, h, w]`.
    pub noise: Tensor<4>,
    /// One per sample, in `0..num_train_timesteps`.
    pub timesteps: Vec<usize>,
    /// `[b, 77, d]`: the text encoder's last hidden state of the clean ids.
    pub prompt_embeds: Tensor<3>,
    /// `[b, 257, c]`: CLIP vision's penultimate states of the whole image.
    pub image_embeds: Tensor<3>,
    /// `[b·5, 257, c]`: the same for each region image (zeros images for padding).
    pub region_embeds: Tensor<3>,
    /// `[b, 512]`: the ArcFace embedding (zeros where none).
    pub face_id: Tensor<2>,
    /// `b·77` flags: the tokens the regions are fused into.
    pub facial_token_mask: Vec<bool>,
    /// Region masks, token positions and valid slots.
    pub facial: FacialTargets,
    /// The foreground masks when this step's coin masks the noise loss.
    pub foreground: Option<ForegroundMasks>,
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// `noise loss + weight · L_loc`.
    pub total: Tensor<1>,
    pub noise_loss: Tensor<1>,
    /// Unweighted L_loc, when hooked layers were seen.
    pub localization: Option<Tensor<1>>,
    /// Each hooked layer's probabilities, by path.
    pub probabilities: Vec<(String, Tensor<4>)>,
    /// `[b, 4, h, w]`: the predicted noise.
    pub prediction: Tensor<4>,
}

/// The forward pass and losses. `probe` must be the one attached to the hooked layers (see
/// [`crate::localization::hooked`]); `loc_weight` multiplies L_loc.
pub fn forward(
    net: &Network,
    process: &ForwardProcess,
    probe: &AttentionProbe,
    inputs: &StepInputs,
    loc_weight: f64,
) -> Result<StepOutput> {
    let [b, _, h, w] = inputs.latents.dims();
    let device = inputs.latents.device();
    probe.take();
    let noisy = process.add_noise(
        inputs.latents.clone(),
        inputs.noise.clone(),
        &inputs.timesteps,
    )?;
    let id_tokens = net
        .image_proj
        .forward(inputs.face_id.clone(), inputs.image_embeds.clone())?;
    let valid = &inputs.facial.valid;
    let prompt = net.facial_encoder.forward(
        inputs.prompt_embeds.clone(),
        inputs.region_embeds.clone(),
        &inputs.facial_token_mask,
        valid,
    )?;
    let context = Tensor::cat(vec![prompt, id_tokens], 1);
    let t: Vec<f32> = inputs.timesteps.iter().map(|&t| t as f32).collect();
    let timesteps = Tensor::<1>::from_data(TensorData::new(t, [b]), &device);
    let prediction = net.unet.forward(noisy, timesteps, context);
    let foreground = inputs
        .foreground
        .as_ref()
        .map(|m| m.at_latent(h, w, &device));
    let noise = noise_loss(prediction.clone(), inputs.noise.clone(), foreground);
    let probabilities = probe.take();
    let localization = localization_loss(&probabilities, &inputs.facial)?;
    let total = match &localization {
        Some(l) if loc_weight != 0.0 => noise.clone() + l.clone().mul_scalar(loc_weight),
        _ => noise.clone(),
    };
    if b != inputs.facial.batch {
        return Err(TrainError::Shape(format!(
            "{b} latents but facial targets for {}",
            inputs.facial.batch
        )));
    }
    Ok(StepOutput {
        total,
        noise_loss: noise,
        localization,
        probabilities,
        prediction,
    })
}
