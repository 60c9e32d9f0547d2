//! Loading models from a folder for the commands and the host alike: the generation engine
//! (with `fetch`'s hint when a file is missing) and ControlNets; and a fresh seed.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use burn::tensor::{DType, Device};
use consistentid_core::Error;
use consistentid_core::controlnet::{ControlNetConfig, ControlNetModel};
use consistentid_core::face::ChannelOrder;
use consistentid_core::pipeline::Engine;
use consistentid_core::pipeline::consistentid::CHECKPOINT;

use crate::source::DirSource;

/// Loads the engine of a ConsistentID folder, with `fetch`'s hint when a file is missing.
pub fn load_engine(
    dir: &Path,
    order: ChannelOrder,
    dtype: DType,
    device: &Device,
) -> Result<Engine> {
    let source = DirSource::open(dir)?;
    let engine = Engine::load(&source, order, dtype, device).map_err(|e| {
        let hint = if matches!(e, Error::MissingFile { .. }) {
            " (`consistentid fetch` assembles the model folder)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}{hint}")
    })?;
    if engine.pipe.lora_up_all_zero {
        eprintln!(
            "note: every LoRA `up` weight in {CHECKPOINT} is zero: the LoRA branches do nothing"
        );
    }
    Ok(engine)
}

/// A ControlNet folder (diffusers layout), or a single `.safetensors` file in the LDM / A1111
/// layout read with the SD1.5 ControlNet config.
pub fn load_controlnet(
    path: &Path,
    dtype: burn::tensor::DType,
    device: &burn::tensor::Device,
) -> consistentid_core::Result<ControlNetModel> {
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let source = DirSource::open(dir)?;
        return ControlNetModel::load_single_file(
            &source,
            name,
            &ControlNetConfig::sd15(),
            dtype,
            device,
        );
    }
    ControlNetModel::load(&DirSource::open(path)?, "", None, dtype, device)
}

/// A seed for a request that gave none.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // Four decimal digits fewer than u64::MAX keeps seeds easy to type back.
    RandomState::new().hash_one(Instant::now()) % 1_000_000_000_000
}
