//! The ConsistentID stages: the ID projection and the FacialEncoder on explicit tensors, and the
//! whole pipeline (`consistentid-prompt`: everything before denoising; `consistentid`: to the
//! image), plus the identity (stored embedding or detection + ArcFace) they share with
//! `generate --face`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device, Tensor, TensorData};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::face::analysis::{DETECTOR, FaceAnalysis, RECOGNISER};
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::DenoiseLoop;
use consistentid_core::pipeline::consistentid::{ConsistentIdPipeline, Prepared, generate};
use consistentid_core::pipeline::request::strip_reserved_markers;
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::{NamedTensor, TensorFile};

use crate::commands::args::{IdentityArgs, TensorArgs};
use crate::device::{DeviceChoice, select};
use crate::io::image::read_image;
use crate::io::tensors::{file_name, read_id_embedding, write};
use crate::source::DirSource;

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
    let input = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
    let id = input.tensor::<2>("id_embedding", &device)?;
    let clip = input.tensor::<3>("clip_penultimate", &device)?;
    let tokens = modules.image_proj.forward(id, clip)?;
    write(&args.out, &[NamedTensor::f32("id_tokens", tokens)], "")
}

/// `stage facial-encoder`.
pub fn facial_encoder(args: &ModuleArgs, device: DeviceChoice) -> Result<()> {
    let (modules, device, bytes) = open(args, device)?;
    let input = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
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

/// The `[1, 512]` normalised identity embedding of `face`: the stored one, or SCRFD + ArcFace
/// with the folder's buffalo_l files.
pub fn identity(
    dir: &Path,
    face: &RgbImage,
    face_path: &Path,
    args: &IdentityArgs,
    device: &Device,
) -> Result<Tensor<2>> {
    let values = match &args.id_embedding {
        Some(path) => read_id_embedding(path)?,
        None => {
            let source = DirSource::open(dir)?;
            require_face_analysis(&source)?;
            let faces = FaceAnalysis::load(&source, args.channel_order.into(), device)?
                .context("buffalo_l files")?;
            let found = faces.identify(
                face,
                &file_name(face_path),
                args.face_index,
                args.allow_no_face,
            )?;
            for w in found.warnings {
                eprintln!("warning: {w}");
            }
            found.embedding
        }
    };
    Ok(Tensor::from_data(TensorData::new(values, [1, 512]), device))
}

/// The folder must have buffalo_l's files when no `--id-embedding` is given.
pub fn require_face_analysis(source: &DirSource) -> Result<()> {
    if FaceAnalysis::find(source).is_none() {
        bail!(
            "no --id-embedding and no insightface buffalo_l files ({DETECTOR}, {RECOGNISER}) in {} or its buffalo_l/: add them or pass --id-embedding",
            source.root().display()
        );
    }
    Ok(())
}

/// Arguments of `stage consistentid-prompt` and `stage consistentid`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// The model folder (SD1.5 diffusers layout + image_encoder/, ConsistentID-v1.bin,
    /// face_parsing.pth, optionally buffalo_l's ONNX files).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The reference face photo.
    #[arg(long, value_name = "IMG")]
    pub face: PathBuf,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// The prompt, used verbatim (no style).
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Output safetensors file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Extra arguments of `stage consistentid`.
#[derive(Debug, clap::Args)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[arg(long)]
    pub steps: usize,
    #[arg(long)]
    pub guidance: f64,
    /// Steps `i <= merge-step` use the text-only prompt.
    #[arg(long)]
    pub merge_step: usize,
    /// Safetensors with `init_latents` [1,4,h,w] (standard normal).
    #[arg(long, value_name = "FILE")]
    pub init_latents: PathBuf,
}

/// Loads the pipeline of a model folder.
pub fn load_pipeline(dir: &Path, dtype: DType, device: &Device) -> Result<ConsistentIdPipeline> {
    let source = DirSource::open(dir)?;
    let pipe = ConsistentIdPipeline::load(&source, dtype, device).map_err(|e| {
        let hint = if matches!(e, consistentid_core::Error::MissingFile { .. }) {
            " (`consistentid fetch` assembles the model folder)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}{hint}")
    })?;
    if pipe.lora_up_all_zero {
        eprintln!(
            "note: every LoRA `up` weight in {CHECKPOINT} is zero: the LoRA branches do nothing"
        );
    }
    Ok(pipe)
}

/// `text` without the reserved markers, with a warning when it had any.
fn strip_markers(text: &str, flag: &str) -> String {
    match strip_reserved_markers(text) {
        Some(clean) => {
            eprintln!(
                "warning: {flag}: removed <|image|> / <|facial|>, which are reserved for the pipeline's own markers"
            );
            clean
        }
        None => text.to_string(),
    }
}

fn prepare_stage(
    args: &PipelineArgs,
    device: DeviceChoice,
    dtype: DType,
) -> Result<(ConsistentIdPipeline, Prepared, Device)> {
    let face = read_image(&args.face)?;
    let prompt = strip_markers(&args.prompt, "--prompt");
    let negative = args
        .negative_prompt
        .as_deref()
        .map(|n| strip_markers(n, "--negative-prompt"));
    let (device, _) = select(device)?;
    let pipe = load_pipeline(&args.model, dtype, &device)?;
    let id = identity(&args.model, &face, &args.face, &args.identity, &device)?;
    let prepared = pipe.prepare(&face, id, &prompt, negative.as_deref())?;
    Ok((pipe, prepared, device))
}

/// `stage consistentid-prompt`.
pub fn consistentid_prompt(args: &PipelineArgs, device: DeviceChoice) -> Result<()> {
    let (_, p, _) = prepare_stage(args, device, DType::F32)?;
    let len = p.prompt.input_ids.len();
    let ids: Vec<i64> = p.prompt.input_ids.iter().map(|&i| i64::from(i)).collect();
    let mask: Vec<i64> = p
        .prompt
        .facial_token_mask
        .iter()
        .map(|&b| i64::from(b))
        .collect();
    let idx: Vec<i64> = p
        .prompt
        .facial_token_idx
        .iter()
        .map(|&i| i as i64)
        .collect();
    let idx_mask: Vec<i64> = p
        .prompt
        .facial_token_idx_mask
        .iter()
        .map(|&b| i64::from(b))
        .collect();
    let n = idx.len();
    eprintln!("prompt: {}", p.prompt.prompt_face);
    write(
        &args.out,
        &[
            NamedTensor::from_i64("input_ids", vec![1, len], &ids),
            NamedTensor::from_i64("facial_token_mask", vec![1, len], &mask),
            NamedTensor::from_i64("facial_token_idx", vec![1, n], &idx),
            NamedTensor::from_i64("facial_token_idx_mask", vec![1, n], &idx_mask),
            NamedTensor::f32("null", p.conditioning.null),
            NamedTensor::f32("augmented", p.conditioning.augmented),
            NamedTensor::f32("text_only", p.conditioning.text_only),
        ],
        &args.prompt,
    )
}

/// `stage consistentid`.
pub fn consistentid(args: &DenoiseArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let (pipe, prepared, device) = prepare_stage(&args.pipeline, device, dtype)?;
    let bytes = std::fs::read(&args.init_latents)
        .with_context(|| format!("cannot read {}", args.init_latents.display()))?;
    let init = TensorFile::parse_input(&args.init_latents.display().to_string(), &bytes)?
        .tensor::<4>("init_latents", &device)?;
    let spec = DenoiseLoop {
        scheduler: SchedulerKind::Euler,
        steps: args.steps,
        guidance_scale: args.guidance,
    };
    let image = generate(
        &pipe.sd,
        &prepared.conditioning,
        &spec,
        args.merge_step,
        init.clone(),
        &mut NoiseRng::new(0),
        &mut |_, _| {},
    )?;
    write(
        &args.pipeline.out,
        &[
            NamedTensor::f32("init_latents", init),
            NamedTensor::f32("image", image),
        ],
        &args.pipeline.prompt,
    )
}
