//! The facial attention localization loss (L_loc): pixels inside facial region k should give
//! more attention probability to region k's facial token than pixels outside it do
//! (FastComposer's balanced L1, as the official `functions.py:205-324` computes it).
//!
//! Two variants (train-eval spec A4): `code` supervises the self-attention (`attn1`) of the
//! hooked layers exactly as the official code does, where a facial token's sequence position
//! selects a *key pixel*; `paper` supervises the text branch of the cross-attention (`attn2`),
//! as the paper and FastComposer describe.

use burn::tensor::{Int, Tensor, TensorData};

use crate::{Result, TrainError};
use consistentid_core::image::torch_resize::resize_antialias;

/// Which attention L_loc supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocVariant {
    /// The official code: self-attention probabilities.
    Code,
    /// The paper: the cross-attention probabilities of the facial text tokens.
    Paper,
    /// No localization loss (the ablation).
    Off,
}

impl LocVariant {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "code" => Some(Self::Code),
            "paper" => Some(Self::Paper),
            "off" => Some(Self::Off),
            _ => None,
        }
    }
}

/// The block groups the official hooks choose from (`UNET_LAYER_NAMES`), outermost first.
const UNET_LAYER_NAMES: [&str; 7] = [
    "down_blocks.0",
    "down_blocks.1",
    "down_blocks.2",
    "mid_block",
    "up_blocks.1",
    "up_blocks.2",
    "up_blocks.3",
];

/// Whether the attention at `path` is hooked: the middle `layers` groups of
/// [`UNET_LAYER_NAMES`] (5: `down_blocks.1` to `up_blocks.2`), `attn1` for the code variant and
/// `attn2` for the paper's.
pub fn hooked(path: &str, variant: LocVariant, layers: usize) -> bool {
    let attn = match variant {
        LocVariant::Code => "attn1",
        LocVariant::Paper => "attn2",
        LocVariant::Off => return false,
    };
    let layers = layers.min(UNET_LAYER_NAMES.len());
    let start = (UNET_LAYER_NAMES.len() - layers) / 2;
    path.contains(attn)
        && UNET_LAYER_NAMES[start..start + layers]
            .iter()
            .any(|g| path.contains(g))
}

/// The facial regions of a batch: masks at training resolution, each facial token's sequence
/// position, and which of the 5 slots are real.
#[derive(Debug, Clone)]
pub struct FacialTargets {
    /// `[b, slots, h, w]` in {0, 1}, row-major.
    pub masks: Vec<f32>,
    pub batch: usize,
    pub slots: usize,
    pub height: usize,
    pub width: usize,
    /// `[b, slots]` sequence positions (0 where the slot is padding).
    pub token_index: Vec<i64>,
    /// `[b, slots]`.
    pub valid: Vec<bool>,
}

/// One hooked layer's loss (`get_object_localization_loss_for_one_layer` with
/// `BalancedL1Loss(normalize=True)`).
///
/// # Shapes
/// - `probs`: `[b, heads, n, t]` with `n` a square number of pixels → `[1]`
pub fn layer_loss(probs: Tensor<4>, targets: &FacialTargets) -> Result<Tensor<1>> {
    let [b, heads, n, t] = probs.dims();
    let k = targets.slots;
    let s = (n as f64).sqrt() as usize;
    if s * s != n || b != targets.batch {
        return Err(TrainError::Shape(format!(
            "localization needs square attention maps for the batch of {}, got {n} pixels for {b}",
            targets.batch
        )));
    }
    if let Some(&i) = targets
        .token_index
        .iter()
        .find(|&&i| i < 0 || i as usize >= t)
    {
        return Err(TrainError::Localization(format!(
            "a facial token at sequence position {i} has no key among the {t} of a {s}×{s} \
             attention map (the official code's index error: with --loc-variant code, facial \
             tokens must sit before position {t}; use --loc-variant paper or shorter captions)"
        )));
    }
    let device = probs.device();
    let masks = resize_antialias(&targets.masks, targets.height, targets.width, s, s);
    // [b, k, n] -> [b, 1, n, k]
    let m = Tensor::<3>::from_data(TensorData::new(masks, [b, k, n]), &device)
        .swap_dims(1, 2)
        .reshape([b, 1, n, k]);
    let index = Tensor::<4, Int>::from_data(
        TensorData::new(targets.token_index.clone(), [b, 1, 1, k]),
        &device,
    )
    .expand([b, heads, n, k]);
    let p = probs.gather(3, index);
    let p = p.clone() / (p.max_dim(2) + 1e-5);
    let background = m.clone().neg() + 1.0;
    let background_sum = background.clone().sum_dim(2) + 1e-5;
    let object_sum = m.clone().sum_dim(2) + 1e-5;
    let loss =
        (p.clone() * background).sum_dim(2) / background_sum - (p * m).sum_dim(2) / object_sum; // [b, heads, 1, k]
    let valid: Vec<f32> = targets
        .valid
        .iter()
        .map(|&v| if v { 1.0 } else { 0.0 })
        .collect();
    let count: Vec<f32> = valid
        .chunks(k)
        .map(|c| c.iter().sum::<f32>() + 1e-5)
        .collect();
    let valid = Tensor::<4>::from_data(TensorData::new(valid, [b, 1, 1, k]), &device);
    let count = Tensor::<4>::from_data(TensorData::new(count, [b, 1, 1, 1]), &device);
    Ok(((loss * valid).sum_dim(3) / count).mean())
}

/// L_loc: the mean of the hooked layers' losses (0 when nothing was hooked).
pub fn localization_loss(
    layers: &[(String, Tensor<4>)],
    targets: &FacialTargets,
) -> Result<Option<Tensor<1>>> {
    let mut total: Option<Tensor<1>> = None;
    for (_, probs) in layers {
        let l = layer_loss(probs.clone(), targets)?;
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    Ok(total.map(|t| t / layers.len() as f64))
}
