//! burn parameter paths ↔ the released checkpoint's keys (`image_proj.*`, `FacialEncoder.*`,
//! `adapter_modules.{i}.*`), for exporting weights and comparing with the official trainer.
//! Linear weights are `[in, out]` in burn and `[out, in]` in torch: every rank-2 tensor is
//! transposed between the two.

/// The release key of a burn path of [`crate::network::Network`], or `None` for the frozen
/// UNet's own weights. `attention_paths` is the UNet's attention modules in processor order.
pub fn release_name(path: &str, attention_paths: &[String]) -> Option<String> {
    if let Some(rest) = path.strip_prefix("image_proj.") {
        return Some(format!("image_proj.{}", perceiver_key(rest)));
    }
    if let Some(rest) = path.strip_prefix("facial_encoder.") {
        return Some(format!("FacialEncoder.{}", perceiver_key(rest)));
    }
    let rest = path.strip_prefix("unet.")?;
    let (attn, processor) = rest.split_once(".processor.")?;
    let i = attention_paths.iter().position(|p| p == attn)?;
    let key = processor
        .strip_prefix("IpLora.lora.")
        .or_else(|| processor.strip_prefix("IpLora."))
        .or_else(|| processor.strip_prefix("Lora."))?;
    Some(format!("adapter_modules.{i}.{key}"))
}

/// `proj_0` → `proj.0`, a perceiver layer's `attn`/`ff.{norm,fc1,fc2}` → `0`/`1.{0,1,3}`, a
/// LayerNorm's `gamma`/`beta` → `weight`/`bias`.
fn perceiver_key(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len() + 1);
    let mut i = 0;
    while i < parts.len() {
        let p = parts[i];
        let after_layer = i >= 2 && parts[i - 2] == "layers";
        match p {
            "proj_0" => out.push("proj.0".into()),
            "proj_2" => out.push("proj.2".into()),
            "attn" if after_layer => out.push("0".into()),
            "ff" if after_layer => {
                out.push("1".into());
                let sub = match parts.get(i + 1) {
                    Some(&"norm") => "0",
                    Some(&"fc1") => "1",
                    _ => "3",
                };
                out.push(sub.into());
                i += 1;
            }
            "gamma" if i + 1 == parts.len() => out.push("weight".into()),
            "beta" if i + 1 == parts.len() => out.push("bias".into()),
            _ => out.push(p.into()),
        }
        i += 1;
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_release_keys() {
        let attn = vec![
            "down_blocks.0.attentions.0.transformer_blocks.0.attn1".to_string(),
            "down_blocks.0.attentions.0.transformer_blocks.0.attn2".to_string(),
        ];
        let cases = [
            ("image_proj.proj_0.weight", Some("image_proj.proj.0.weight")),
            ("image_proj.norm.gamma", Some("image_proj.norm.weight")),
            (
                "image_proj.perceiver_resampler.layers.1.ff.fc2.weight",
                Some("image_proj.perceiver_resampler.layers.1.1.3.weight"),
            ),
            (
                "image_proj.perceiver_resampler.layers.0.ff.norm.beta",
                Some("image_proj.perceiver_resampler.layers.0.1.0.bias"),
            ),
            (
                "facial_encoder.visual_projection.layers.0.attn.norm1.gamma",
                Some("FacialEncoder.visual_projection.layers.0.0.norm1.weight"),
            ),
            (
                "facial_encoder.fuse_module.mlp1.layernorm.gamma",
                Some("FacialEncoder.fuse_module.mlp1.layernorm.weight"),
            ),
            (
                "facial_encoder.visual_projection.latents",
                Some("FacialEncoder.visual_projection.latents"),
            ),
            (
                "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.Lora.to_q_lora.down.weight",
                Some("adapter_modules.0.to_q_lora.down.weight"),
            ),
            (
                "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.IpLora.lora.to_out_lora.up.weight",
                Some("adapter_modules.1.to_out_lora.up.weight"),
            ),
            (
                "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.IpLora.to_k_ip.weight",
                Some("adapter_modules.1.to_k_ip.weight"),
            ),
            (
                "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
                None,
            ),
        ];
        for (path, want) in cases {
            assert_eq!(release_name(path, &attn).as_deref(), want, "{path}");
        }
    }
}
