//! The ConsistentID module stages: the ID projection and the FacialEncoder on explicit tensors.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::tensor_io::{NamedTensor, TensorFile};

use crate::device::{DeviceChoice, select};
use crate::stage::{TensorArgs, write};

/// The ConsistentID checkpoint inside the model folder.
pub const CHECKPOINT: &str = "ConsistentID-v1.bin";

/// Arguments shared by the module stages.
pub type ModuleArgs = TensorArgs;

fn load_modules(dir: &Path, device: &Device) -> Result<ConsistentIdModules> {
    let path = dir.join(CHECKPOINT);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (the model folder needs the official {CHECKPOINT}; `consistentid fetch` downloads it)",
            path.display()
        )
    })?;
    let modules = ConsistentIdModules::load(&bytes, &path.display().to_string(), device)?;
    if modules.lora_up_all_zero() {
        eprintln!(
            "note: every LoRA `up` weight in {CHECKPOINT} is zero: the LoRA branches do nothing"
        );
    }
    Ok(modules)
}

fn open(args: &ModuleArgs, device: DeviceChoice) -> Result<(ConsistentIdModules, Device, Vec<u8>)> {
    let (device, _) = select(device)?;
    let modules = load_modules(&args.model, &device)?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read input {}", args.input.display()))?;
    Ok((modules, device, bytes))
}

/// `stage id-tokens`.
pub fn id_tokens(args: &ModuleArgs, device: DeviceChoice) -> Result<()> {
    let (modules, device, bytes) = open(args, device)?;
    let input = TensorFile::parse(&args.input.display().to_string(), &bytes)?;
    let id = input.tensor::<2>("id_embedding", &device)?;
    let clip = input.tensor::<3>("clip_penultimate", &device)?;
    let tokens = modules.image_proj.forward(id, clip)?;
    write(&args.out, &[NamedTensor::f32("id_tokens", tokens)], "")
}

/// `stage facial-encoder`.
pub fn facial_encoder(args: &ModuleArgs, device: DeviceChoice) -> Result<()> {
    let (modules, device, bytes) = open(args, device)?;
    let input = TensorFile::parse(&args.input.display().to_string(), &bytes)?;
    let prompt = input.tensor::<3>("prompt_embeds", &device)?;
    let (regions, shape) = input.f32("region_hidden_states")?;
    if shape.len() != 4 || shape[0] != 1 {
        bail!("`region_hidden_states` must be [1, regions, tokens, width], got {shape:?}");
    }
    let regions: Tensor<3> = Tensor::from_data(
        TensorData::new(regions, [shape[1], shape[2], shape[3]]),
        &device,
    );
    let flags = |name: &str| -> Result<Vec<bool>> {
        Ok(input.i64(name)?.0.iter().map(|&v| v != 0).collect())
    };
    let out = modules.facial_encoder.forward(
        prompt,
        regions,
        &flags("facial_token_mask")?,
        &flags("facial_token_idx_mask")?,
    )?;
    write(&args.out, &[NamedTensor::f32("prompt_embeds", out)], "")
}
