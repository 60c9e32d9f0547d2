//! Installing LoRA / IP-Adapter processors on every UNet attention and loading their weights
//! from an `adapter_modules` state dict keyed by processor index (`{i}.to_q_lora.down.weight`,
//! the order of diffusers' `unet.attn_processors`: down blocks, up blocks, then the mid block;
//! `attn1` before `attn2` in each transformer block). The fixtures check this order against
//! diffusers' own list.

use burn::tensor::{DType, Device};

use super::UNet2DConditionModel;
use super::attention::{Attention, AttentionProbe};
use crate::tensor_io::TensorFile;
use crate::weights::{LoadSpec, WeightSource, load_safetensors_filtered};
use crate::{Error, Result};

impl UNet2DConditionModel {
    /// Paths of every attention module, in diffusers' `attn_processors` order.
    pub fn attention_paths(&self) -> Vec<String> {
        let mut paths = Vec::new();
        let mut add = |prefix: String, attentions: &[super::transformer::Transformer2DModel]| {
            for (a, t) in attentions.iter().enumerate() {
                for (b, _) in t.transformer_blocks.iter().enumerate() {
                    for attn in ["attn1", "attn2"] {
                        paths.push(format!(
                            "{prefix}.attentions.{a}.transformer_blocks.{b}.{attn}"
                        ));
                    }
                }
            }
        };
        for (i, block) in self.down_blocks.iter().enumerate() {
            add(format!("down_blocks.{i}"), &block.attentions);
        }
        for (i, block) in self.up_blocks.iter().enumerate() {
            add(format!("up_blocks.{i}"), &block.attentions);
        }
        add("mid_block".into(), &self.mid_block.attentions);
        paths
    }

    /// Every attention module, in [`Self::attention_paths`] order.
    fn attentions_mut(&mut self) -> Vec<&mut Attention> {
        let mut out = Vec::new();
        let blocks = self
            .down_blocks
            .iter_mut()
            .flat_map(|b| b.attentions.iter_mut())
            .chain(
                self.up_blocks
                    .iter_mut()
                    .flat_map(|b| b.attentions.iter_mut()),
            )
            .chain(self.mid_block.attentions.iter_mut());
        for t in blocks {
            for block in t.transformer_blocks.iter_mut() {
                out.push(&mut block.attn1);
                out.push(&mut block.attn2);
            }
        }
        out
    }

    /// Attaches `probe` to every attention module whose path `hooked` accepts (and detaches it
    /// from the others); the hooked paths, in [`Self::attention_paths`] order.
    pub fn attach_probe(
        &mut self,
        probe: &AttentionProbe,
        hooked: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let paths = self.attention_paths();
        let mut out = Vec::new();
        for (path, attn) in paths.into_iter().zip(self.attentions_mut()) {
            attn.probe = hooked(&path).then(|| (path.clone(), probe.clone()));
            if attn.probe.is_some() {
                out.push(path);
            }
        }
        out
    }

    /// Installs ConsistentID's processors (LoRA on self-attention, LoRA + IP-Adapter on
    /// cross-attention) and loads them from the safetensors file `path` holding an
    /// `adapter_modules` state dict (keys `{i}.…`, optionally prefixed `adapter_modules.`).
    /// The LoRA rank is read from the file.
    pub fn load_ip_lora_adapters(
        &mut self,
        source: &dyn WeightSource,
        path: &str,
        num_tokens: usize,
        scale: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<()> {
        let bytes = source.read(path)?;
        let shown = source.display_path(path);
        let file = TensorFile::parse(&shown, &bytes)?;
        let names = file.names();
        let prefix = if names.iter().any(|n| n.starts_with("adapter_modules.")) {
            "adapter_modules."
        } else {
            ""
        };
        let rank_key = format!("{prefix}0.to_q_lora.down.weight");
        let rank = file
            .f32(&rank_key)
            .map(|(_, shape)| shape[0])
            .map_err(|_| Error::WeightMismatch {
                path: shown.clone(),
                reason: format!("no `{rank_key}` to read the LoRA rank from"),
            })?;
        drop(file);
        let paths = self.attention_paths();
        for (i, attn) in self.attentions_mut().into_iter().enumerate() {
            if i % 2 == 0 {
                attn.install_lora(rank, device);
            } else {
                attn.install_ip_lora(rank, num_tokens, scale, device);
            }
        }
        let mut rules: Vec<(String, String)> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    format!(r"^{}{i}\.", regex::escape(prefix)),
                    format!("{p}.processor."),
                )
            })
            .collect();
        // The IP processor nests its LoRA layers under `lora`.
        rules.push((
            r"(\.attn2\.processor)\.to_(q|k|v|out)_lora\.".into(),
            "$1.lora.to_${2}_lora.".into(),
        ));
        let rules: Vec<(&str, &str)> = rules
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        load_safetensors_filtered(
            self,
            source,
            path,
            &LoadSpec {
                remap: &rules,
                ignore_unused: &[],
                dtype,
            },
            Some(r"\.processor\."),
        )
    }
}
