//! Training from scratch: every trained tensor re-initialised as the official `train.py`
//! starts (`shared/spec/train-eval.md` §A1, a copy of IP-Adapter's `tutorial_train_faceid.py`):
//! LoRA `down ~ N(0, 1/rank)` and `up = 0` (a fresh LoRA is a no-op), `to_k_ip`/`to_v_ip` copies
//! of the UNet's own `attn2.to_k`/`to_v` rounded to bf16 (the official UNet is bf16 when they are
//! read), PyTorch's defaults elsewhere (Linear weights and biases `U(±1/√in)`, LayerNorm 1 and 0),
//! learned latents `N(0, 1)/√dim`, and ProjPlus rounded to bf16 (the official casts it). The
//! architecture is the one the network was built with (its starting checkpoint's shapes);
//! the draws come from the run's seed (torch's generator cannot be reproduced).

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use consistentid_core::rng::NoiseRng;

use crate::network::{HostTensor, Network};
use crate::{Result, TrainError};

fn bf16_round(v: f32) -> f32 {
    half::bf16::from_f32(v).to_f32()
}

/// The fresh value of one trained tensor (release key `key`, torch layout `shape`).
fn fresh(
    key: &str,
    shape: &[usize],
    sibling: Option<&HostTensor>,
    unet: &dyn Fn(&str) -> Option<HostTensor>,
    rng: &mut NoiseRng,
) -> Result<Vec<f32>> {
    let n: usize = shape.iter().product();
    let uniform = |rng: &mut NoiseRng, bound: f64| -> Vec<f32> {
        (0..n)
            .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
            .collect()
    };
    let unknown = || TrainError::Shape(format!("no initialisation rule for {key} {shape:?}"));
    let mut values = if key.ends_with("_lora.up.weight") {
        vec![0.0; n]
    } else if key.ends_with("_lora.down.weight") {
        let rank = shape[0] as f64;
        (0..n).map(|_| (rng.normal() / rank) as f32).collect()
    } else if let Some(which) = ["to_k_ip", "to_v_ip"]
        .iter()
        .find(|w| key.ends_with(&format!("{w}.weight")))
    {
        let base = unet(&which[..4]).ok_or_else(unknown)?;
        if base.shape != shape {
            return Err(TrainError::Shape(format!(
                "{key} {shape:?} cannot copy the UNet's {} {:?}",
                &which[..4],
                base.shape
            )));
        }
        base.data.iter().map(|&v| bf16_round(v)).collect()
    } else if key.ends_with(".latents") {
        let dim = *shape.last().ok_or_else(unknown)? as f64;
        (0..n).map(|_| (rng.normal() / dim.sqrt()) as f32).collect()
    } else if shape.len() == 2 && key.ends_with(".weight") {
        uniform(rng, 1.0 / (shape[1] as f64).sqrt())
    } else if shape.len() == 1 && key.ends_with(".bias") {
        match sibling {
            Some(w) if w.shape.len() == 2 => uniform(rng, 1.0 / (w.shape[1] as f64).sqrt()),
            Some(_) => vec![0.0; n],
            None => return Err(unknown()),
        }
    } else if shape.len() == 1 && key.ends_with(".weight") {
        vec![1.0; n]
    } else {
        return Err(unknown());
    };
    if key.starts_with("image_proj.") {
        values.iter_mut().for_each(|v| *v = bf16_round(*v));
    }
    Ok(values)
}

/// Puts new torch-layout values into the parameters at the given burn paths.
struct Replace {
    path: Vec<String>,
    values: HashMap<String, HostTensor>,
}

impl ModuleMapper for Replace {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(new) = self.values.remove(&self.path.join(".")) else {
            return param;
        };
        let (id, old) = (param.id, param.val());
        let mut t = Tensor::<D>::from_data(TensorData::new(new.data, new.shape), &old.device());
        if D == 2 {
            t = t.swap_dims(0, 1);
        }
        let t = t.cast(old.dtype());
        Param::initialized(
            id,
            if old.is_require_grad() {
                t.require_grad()
            } else {
                t
            },
        )
    }
}

/// `net` with ProjPlus, the FacialEncoder and the processors initialised afresh from `seed`.
pub fn from_scratch(net: Network, seed: u64) -> Result<Network> {
    let params = net.parameters();
    let attention = net.unet.attention_paths();
    let by_path: HashMap<&str, &HostTensor> =
        params.iter().map(|(p, _, t)| (p.as_str(), t)).collect();
    let mut rng = NoiseRng::new(seed ^ 0x1a17_5c2a_7c4f_0001);
    let mut values = HashMap::new();
    for (path, _, value) in &params {
        let Some(key) = crate::names::release_name(path, &attention) else {
            continue;
        };
        // A bias's weight (Linear) or a LayerNorm's beta's gamma.
        let sibling = path
            .strip_suffix(".bias")
            .map(|p| format!("{p}.weight"))
            .or_else(|| path.strip_suffix(".beta").map(|p| format!("{p}.gamma")))
            .and_then(|p| by_path.get(p.as_str()).copied());
        // The processor's attention module: `unet.{attn}.processor.…`.
        let attn = path
            .strip_prefix("unet.")
            .and_then(|p| p.split_once(".processor."))
            .map(|(a, _)| a.to_string());
        let unet = |which: &str| -> Option<HostTensor> {
            let a = attn.as_ref()?;
            by_path
                .get(format!("unet.{a}.{which}.weight").as_str())
                .map(|t| (*t).clone())
        };
        let data = fresh(&key, &value.shape, sibling, &unet, &mut rng)?;
        values.insert(
            path.clone(),
            HostTensor {
                shape: value.shape.clone(),
                data,
            },
        );
    }
    Ok(net.map(&mut Replace {
        path: Vec::new(),
        values,
    }))
}
