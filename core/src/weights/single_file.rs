//! Single-file SD1.x checkpoints (the original LDM layout community fine-tunes ship):
//! `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE), `cond_stage_model.transformer.*`
//! (CLIP text encoder), mapped onto the same modules as the diffusers layout.
//!
//! The UNet's and the VAE's rules are generated from their configs and live beside them
//! (`unet/single_file.rs`, `vae/single_file.rs`); here: the text encoder's, the part prefixes.

use super::keymap;

/// Rules for `(regex, replacement)`, owned.
pub type Rules = Vec<(String, String)>;

/// Maps `cond_stage_model.transformer.*` onto the CLIP text encoder.
pub fn ldm_text_rules() -> Rules {
    keymap::CLIP_TEXT_REMAP
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The top-level prefixes of an LDM checkpoint.
const LDM_PREFIXES: &[&str] = &[
    r"^model\.diffusion_model\.",
    r"^first_stage_model\.",
    r"^cond_stage_model\.",
    // EMA copies and the training schedule's buffers (`betas`, `alphas_cumprod`, ...).
    r"^model_ema\.",
    r"^[^.]+$",
];

/// Keys to leave unused when loading the part whose prefix is `own`: every other part's.
pub fn other_parts(own: &str) -> Vec<&'static str> {
    LDM_PREFIXES.iter().copied().filter(|p| *p != own).collect()
}

/// The UNet's own prefix pattern.
pub const UNET_PREFIX: &str = r"^model\.diffusion_model\.";
/// The VAE's own prefix pattern.
pub const VAE_PREFIX: &str = r"^first_stage_model\.";
/// The text encoder's own prefix pattern.
pub const TEXT_PREFIX: &str = r"^cond_stage_model\.";
