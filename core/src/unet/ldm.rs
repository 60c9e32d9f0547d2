//! The LDM layout of an SD1.x UNet (`model.diffusion_model.*`) mapped onto diffusers' names.
//! The LDM UNet numbers its blocks flatly (`input_blocks.{k}`, `output_blocks.{k}`), so the rules
//! are generated from the config, mirroring diffusers 0.23 `convert_ldm_unet_checkpoint`; the
//! fixtures check them against that function's output.

use super::UNet2DConditionConfig;
use crate::weights::keymap;
use crate::weights::single_file::{Rules, UNET_PREFIX as UNET};

/// LDM ResNet parameter names → diffusers `ResnetBlock2D` (UNet).
const UNET_RESNET: &[(&str, &str)] = &[
    ("in_layers.0", "norm1"),
    ("in_layers.2", "conv1"),
    ("emb_layers.1", "time_emb_proj"),
    ("out_layers.0", "norm2"),
    ("out_layers.3", "conv2"),
    ("skip_connection", "conv_shortcut"),
];

/// The encoder half (time embedding, `input_blocks`, `middle_block`) under `prefix`, which
/// the UNet and a ControlNet share; and how many input blocks there are.
fn encoder_rules(config: &UNet2DConditionConfig, prefix: &str) -> (Rules, usize) {
    let n = config.block_out_channels.len();
    let layers = config.layers_per_block.expand(n);
    let mut rules: Rules = vec![
        (
            format!(r"{prefix}time_embed\.0\."),
            "time_embedding.linear_1.".into(),
        ),
        (
            format!(r"{prefix}time_embed\.2\."),
            "time_embedding.linear_2.".into(),
        ),
        (format!(r"{prefix}input_blocks\.0\.0\."), "conv_in.".into()),
        (
            format!(r"{prefix}middle_block\.0\."),
            "mid_block.resnets.0.".into(),
        ),
        (
            format!(r"{prefix}middle_block\.1\."),
            "mid_block.attentions.0.".into(),
        ),
        (
            format!(r"{prefix}middle_block\.2\."),
            "mid_block.resnets.1.".into(),
        ),
    ];
    // input_blocks: 1 + (layers + 1) per level: the ResNets (with their transformer at `.1`),
    // then the downsampler (`.0.op`) except on the last level.
    let mut k = 1;
    for (b, &l) in layers.iter().enumerate() {
        for i in 0..l {
            rules.push((
                format!(r"{prefix}input_blocks\.{k}\.0\."),
                format!("down_blocks.{b}.resnets.{i}."),
            ));
            rules.push((
                format!(r"{prefix}input_blocks\.{k}\.1\."),
                format!("down_blocks.{b}.attentions.{i}."),
            ));
            k += 1;
        }
        if b + 1 < n {
            rules.push((
                format!(r"{prefix}input_blocks\.{k}\.0\.op\."),
                format!("down_blocks.{b}.downsamplers.0.conv."),
            ));
            k += 1;
        }
    }
    (rules, k)
}

/// The ResNet and attention renames that apply wherever the blocks sit.
fn inner_rules(rules: &mut Rules) {
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
}

/// Maps a single-file ControlNet (the LDM / A1111 layout, `control_model.*` or the same keys
/// without the prefix) onto diffusers' `ControlNetModel` names, as diffusers 0.23
/// `convert_ldm_unet_checkpoint(controlnet=True)`: `input_hint_block.{0, 2, …}` is the
/// conditioning embedding (`hint_convs` convolutions: `conv_in`, the blocks, `conv_out`),
/// `zero_convs.{i}.0` the residual convolutions, `middle_block_out.0` the mid one.
pub fn ldm_controlnet_rules(config: &UNet2DConditionConfig, hint_convs: usize) -> Rules {
    let prefix = r"^(?:control_model\.)?";
    let (mut rules, inputs) = encoder_rules(config, prefix);
    rules.push((
        format!(r"{prefix}input_hint_block\.0\."),
        "controlnet_cond_embedding.conv_in.".into(),
    ));
    for j in 0..hint_convs.saturating_sub(2) {
        rules.push((
            format!(r"{prefix}input_hint_block\.{}\.", 2 * (j + 1)),
            format!("controlnet_cond_embedding.blocks.{j}."),
        ));
    }
    rules.push((
        format!(r"{prefix}input_hint_block\.{}\.", 2 * (hint_convs - 1)),
        "controlnet_cond_embedding.conv_out.".into(),
    ));
    for i in 0..inputs {
        rules.push((
            format!(r"{prefix}zero_convs\.{i}\.0\."),
            format!("controlnet_down_blocks.{i}."),
        ));
    }
    rules.push((
        format!(r"{prefix}middle_block_out\.0\."),
        "controlnet_mid_block.".into(),
    ));
    inner_rules(&mut rules);
    rules
}

/// Maps `model.diffusion_model.*` keys of an SD1.x UNet with `config`'s layout.
pub fn ldm_unet_rules(config: &UNet2DConditionConfig) -> Rules {
    let n = config.block_out_channels.len();
    let layers = config.layers_per_block.expand(n);
    let (mut rules, _) = encoder_rules(config, UNET);
    rules.push((format!(r"{UNET}out\.0\."), "conv_norm_out.".into()));
    rules.push((format!(r"{UNET}out\.2\."), "conv_out.".into()));
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
    inner_rules(&mut rules);
    rules
}
