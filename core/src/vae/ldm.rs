//! The LDM layout of an SD1.x VAE (`first_stage_model.*`) mapped onto diffusers' names,
//! mirroring diffusers 0.23 `convert_ldm_vae_checkpoint`.

use super::AutoencoderKLConfig;
use crate::weights::single_file::{Rules, VAE_PREFIX as VAE};

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
