//! Single-file SD1.x checkpoints (the original LDM layout community fine-tunes ship):
//! `model.diffusion_model.*` (UNet), `first_stage_model.*` (VAE), `cond_stage_model.transformer.*`
//! (CLIP text encoder), mapped onto the same modules as the diffusers layout.
//!
//! The LDM UNet numbers its blocks flatly (`input_blocks.{k}`, `output_blocks.{k}`), so the rules
//! are generated from the config, mirroring diffusers 0.23 `convert_ldm_unet_checkpoint` /
//! `convert_ldm_vae_checkpoint`; the fixtures check them against those functions' output.

use super::keymap;
use crate::unet::UNet2DConditionConfig;
use crate::vae::AutoencoderKLConfig;

/// Rules for `(regex, replacement)`, owned.
pub type Rules = Vec<(String, String)>;

const UNET: &str = r"^model\.diffusion_model\.";
const VAE: &str = r"^first_stage_model\.";

/// LDM ResNet parameter names → diffusers `ResnetBlock2D` (UNet).
const UNET_RESNET: &[(&str, &str)] = &[
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("emb_layers.1", "time_emb_proj"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("skip_connection", "conv_shortcut"),
];

/// Maps `model.diffusion_model.*` keys of an SD1.x UNet with `config`'s layout.
pub fn ldm_unet_rules(config: &UNet2DConditionConfig) -> Rules {
    let n = config.block_out_channels.len();
    let layers = config.layers_per_block.expand(n);
    let mut rules: Rules = vec![
        (
            format!(r"{UNET}time_embed\.0\."),
            "time_embedding.linear_1.".into(),
        ),
        (
            format!(r"{UNET}time_embed\.2\."),
            "time_embedding.linear_2.".into(),
        ),
        (format!(r"{UNET}input_blocks\.0\.0\."), "conv_in.".into()),
        (
            format!(r"{UNET}middle_block\.0\."),
            "mid_block.resnets.0.".into(),
        ),
        (
            format!(r"{UNET}middle_block\.1\."),
            "mid_block.attentions.0.".into(),
        ),
        (
            format!(r"{UNET}middle_block\.2\."),
            "mid_block.resnets.1.".into(),
        ),
        (format!(r"{UNET}out\.0\."), "conv_norm_out.".into()),
        (format!(r"{UNET}out\.2\."), "conv_out.".into()),
    ];
    // input_blocks: 1 + (layers + 1) per level: the ResNets (with their transformer at `.1`),
    // then the downsampler (`.0.op`) except on the last level.
    let mut k = 1;
    for (b, &l) in layers.iter().enumerate() {
        for i in 0..l {
            rules.push((
                format!(r"{UNET}input_blocks\.{k}\.0\."),
                format!("down_blocks.{b}.resnets.{i}."),
            ));
            rules.push((
                format!(r"{UNET}input_blocks\.{k}\.1\."),
                format!("down_blocks.{b}.attentions.{i}."),
            ));
            k += 1;
        }
        if b + 1 < n {
            rules.push((
                format!(r"{UNET}input_blocks\.{k}\.0\.op\."),
                format!("down_blocks.{b}.downsamplers.0.conv."),
            ));
            k += 1;
        }
    }
    // output_blocks: layers + 1 per level; the upsampler follows the last ResNet at `.1`, or
    // at `.2` when that block also has a transformer.
    let mut k = 0;
    for b in 0..n {
        let l = layers[n - 1 - b] + 1;
        let attn = config.up_block_types[b] == "CrossAttnUpBlock2D";
        for i in 0..l {
            rules.push((
                format!(r"{UNET}output_blocks\.{k}\.0\."),
                format!("up_blocks.{b}.resnets.{i}."),
            ));
            if attn {
                rules.push((
                    format!(r"{UNET}output_blocks\.{k}\.1\."),
                    format!("up_blocks.{b}.attentions.{i}."),
                ));
            }
            if i + 1 == l && b + 1 < n {
                let at = if attn { 2 } else { 1 };
                rules.push((
                    format!(r"{UNET}output_blocks\.{k}\.{at}\.conv\."),
                    format!("up_blocks.{b}.upsamplers.0.conv."),
                ));
            }
            k += 1;
        }
    }
    for (from, to) in UNET_RESNET {
        rules.push((
            format!(r"\.resnets\.(\d+)\.{}\.", regex::escape(from)),
            format!(".resnets.${{1}}.{to}."),
        ));
    }
    rules.extend(
        keymap::UNET_REMAP
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    rules
}

/// Maps `first_stage_model.*` keys of an SD1.x VAE with `config`'s layout.
pub fn ldm_vae_rules(config: &AutoencoderKLConfig) -> Rules {
    let n = config.block_out_channels.len();
    let mut rules: Rules = Vec::new();
    for part in ["encoder", "decoder"] {
        rules.push((
            format!(r"{VAE}{part}\.mid\.block_1\."),
            format!("{part}.mid_block.resnets.0."),
        ));
        rules.push((
            format!(r"{VAE}{part}\.mid\.block_2\."),
            format!("{part}.mid_block.resnets.1."),
        ));
        rules.push((
            format!(r"{VAE}{part}\.mid\.attn_1\.norm\."),
            format!("{part}.mid_block.attentions.0.group_norm."),
        ));
        for (from, to) in [
            ("q", "to_q"),
            ("k", "to_k"),
            ("v", "to_v"),
            ("proj_out", "to_out"),
        ] {
            rules.push((
                format!(r"{VAE}{part}\.mid\.attn_1\.{from}\."),
                format!("{part}.mid_block.attentions.0.{to}."),
            ));
        }
        rules.push((
            format!(r"{VAE}{part}\.norm_out\."),
            format!("{part}.conv_norm_out."),
        ));
    }
    rules.push((
        format!(r"{VAE}encoder\.down\.(\d+)\.block\."),
        "encoder.down_blocks.${1}.resnets.".into(),
    ));
    rules.push((
        format!(r"{VAE}encoder\.down\.(\d+)\.downsample\.conv\."),
        "encoder.down_blocks.${1}.downsamplers.0.conv.".into(),
    ));
    // The LDM decoder numbers its up levels from the lowest resolution: reversed.
    for i in 0..n {
        let b = n - 1 - i;
        rules.push((
            format!(r"{VAE}decoder\.up\.{i}\.block\."),
            format!("decoder.up_blocks.{b}.resnets."),
        ));
        rules.push((
            format!(r"{VAE}decoder\.up\.{i}\.upsample\.conv\."),
            format!("decoder.up_blocks.{b}.upsamplers.0.conv."),
        ));
    }
    rules.push((r"\.nin_shortcut\.".into(), ".conv_shortcut.".into()));
    // Everything else (conv_in, conv_out, quant_conv, post_quant_conv) keeps its name.
    rules.push((VAE.into(), String::new()));
    rules
}

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
