//! Checkpoint key tables: how upstream tensor names map onto our module paths.
//!
//! Field names of our modules equal the upstream key segments, so most tables only strip
//! prefixes and list the upstream tensors we deliberately do not load.

/// transformers `CLIPTextModel` (`text_encoder/model.safetensors`): transformers 4 keys match.
pub const CLIP_TEXT_REMAP: &[(&str, &str)] = &[
    // Single-file SD1.5 checkpoints nest the encoder as `cond_stage_model.transformer.*`.
    (r"^cond_stage_model\.transformer\.", ""),
    // transformers 5 saves `CLIPTextModel` without its `text_model.` prefix.
    (
        r"^(embeddings|encoder|final_layer_norm)\.",
        "text_model.$1.",
    ),
];

/// Tensors of a CLIP text checkpoint that the encoder does not use.
pub const CLIP_TEXT_IGNORE: &[&str] = &[
    // Persistent buffer in older transformers versions; positions are computed instead.
    r"^text_model\.embeddings\.position_ids$",
    // `CLIPTextModelWithProjection` head: the pooled projection is not part of this model.
    r"^text_projection\.",
    // A full CLIPModel checkpoint also holds the vision tower.
    r"^vision_model\.",
    r"^visual_projection\.",
    r"^logit_scale$",
];

/// transformers `CLIPVisionModelWithProjection` (`image_encoder/model.safetensors`).
pub const CLIP_VISION_REMAP: &[(&str, &str)] = &[
    // A vision tower saved without its `vision_model.` prefix (as transformers 5 does for the
    // text tower) is detected by its keys.
    (
        r"^(embeddings|encoder|pre_layrnorm|post_layernorm)\.",
        "vision_model.$1.",
    ),
];

/// Tensors of a CLIP vision checkpoint that `CLIPVisionModelWithProjection` does not use.
pub const CLIP_VISION_IGNORE: &[&str] = &[
    r"^vision_model\.embeddings\.position_ids$",
    // A full CLIPModel checkpoint also holds the text tower.
    r"^text_model\.",
    r"^text_projection\.",
    r"^logit_scale$",
];

/// diffusers `AutoencoderKL` (`vae/diffusion_pytorch_model.safetensors`).
pub const VAE_REMAP: &[(&str, &str)] = &[
    // `to_out` is a ModuleList of (Linear, Dropout) upstream; only the Linear has weights.
    (r"\.to_out\.0\.", ".to_out."),
];

/// diffusers `UNet2DConditionModel` (`unet/diffusion_pytorch_model.safetensors`).
pub const UNET_REMAP: &[(&str, &str)] = &[
    // `to_out` is a ModuleList of (Linear, Dropout) upstream; only the Linear has weights.
    (r"\.to_out\.0\.", ".to_out."),
    // FeedForward's `net` is (GEGLU, Dropout, Linear): indices 0 and 2 carry weights.
    (r"\.ff\.net\.0\.", ".ff.net_0."),
    (r"\.ff\.net\.2\.", ".ff.net_2."),
];
