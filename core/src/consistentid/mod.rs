//! The ConsistentID modules (`ConsistentID-v1.bin`): the ID projection (`image_proj`) and the
//! FacialEncoder, loaded from the official nested state dict (bf16 and f32 groups) with
//! dimensions read from the checkpoint.

pub mod conditioning;
pub mod facial_encoder;
pub mod params;
pub mod perceiver;
pub mod proj_plus;
pub mod prompt;
pub mod styles;
pub mod training_text;

use std::collections::HashMap;

use burn::tensor::Device;

pub use facial_encoder::FacialEncoder;
pub use proj_plus::ProjPlusModel;

use crate::tensor_io::{NamedTensor, to_safetensors};
use crate::weights::torch_file::{self, TorchTensor};
use crate::{Error, Result};
use params::StateDict;

/// The two ConsistentID modules of the checkpoint (its `adapter_modules` go to the UNet).
pub struct ConsistentIdModules {
    pub image_proj: ProjPlusModel,
    pub facial_encoder: FacialEncoder,
    /// The `adapter_modules.*` tensors, left for the UNet's attention processors.
    pub adapter_modules: HashMap<String, TorchTensor>,
}

impl ConsistentIdModules {
    /// Reads `ConsistentID-v1.bin` (torch zip pickle: `image_proj` (or `image_proj_model`),
    /// `FacialEncoder`, `adapter_modules`).
    pub fn load(bytes: &[u8], path: &str, device: &Device) -> Result<Self> {
        let tensors = torch_file::read(bytes).map_err(|reason| Error::WeightFile {
            path: path.to_string(),
            reason,
        })?;
        let mut tensors: HashMap<String, TorchTensor> = tensors.into_iter().collect();
        let proj_prefix = if tensors.keys().any(|k| k.starts_with("image_proj_model.")) {
            "image_proj_model"
        } else {
            "image_proj"
        };
        let mut sd = StateDict {
            tensors: &mut tensors,
            path,
            device,
        };
        let image_proj = ProjPlusModel::load(&mut sd, proj_prefix)?;
        let facial_encoder = FacialEncoder::load(&mut sd, "FacialEncoder")?;
        let adapter_modules: HashMap<String, TorchTensor> = tensors
            .extract_if(|k, _| k.starts_with("adapter_modules."))
            .collect();
        if let Some(extra) = tensors.keys().next() {
            return Err(Error::WeightMismatch {
                path: path.to_string(),
                reason: format!("unexpected tensor `{extra}`"),
            });
        }
        Ok(Self {
            image_proj,
            facial_encoder,
            adapter_modules,
        })
    }

    /// The `adapter_modules` tensors as a safetensors file (`{i}.…` keys), the format the
    /// UNet's processor loader reads.
    pub fn adapter_safetensors(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&String> = self.adapter_modules.keys().collect();
        names.sort();
        let tensors: Vec<NamedTensor> = names
            .into_iter()
            .map(|k| {
                let t = &self.adapter_modules[k];
                NamedTensor::from_f32(
                    k.trim_start_matches("adapter_modules."),
                    t.shape.clone(),
                    &t.data,
                )
            })
            .collect();
        to_safetensors(&tensors, None)
    }

    /// Whether every LoRA `up` weight is zero (the released file may hold untrained LoRA; spec
    /// §4.3): then the LoRA branches are no-ops.
    pub fn lora_up_all_zero(&self) -> bool {
        self.adapter_modules
            .iter()
            .filter(|(k, _)| k.contains("_lora.up."))
            .all(|(_, t)| t.data.iter().all(|&v| v == 0.0))
    }
}
