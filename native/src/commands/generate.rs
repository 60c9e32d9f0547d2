//! `consistentid generate`: text-to-image from a diffusers SD1.x folder to PNG files carrying
//! their generation parameters (the A1111 `parameters` text chunk).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device};
use clap::Args;
use consistentid_core::Error;
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::engine::run_txt2img;
use consistentid_core::pipeline::into::{IntoJob, PasteSink};
use consistentid_core::pipeline::{
    FaceJob, GenerationRequest, IdentitySource, PhotoJob, SingleFileConfigs, StableDiffusion,
};
use consistentid_core::scheduler::SchedulerKind;

use crate::commands::args::{IdentityArgs, parse_scheduler};
use crate::commands::photo_in::{
    ControlFlags, PhotoArgs, default_size, flag_errors, load_controls,
};
use crate::commands::stage::consistentid::require_face_analysis;
use crate::commands::terminal::TerminalSink;
use crate::device::{DeviceChoice, DtypeChoice, default_batch, select};
use crate::io::image::read_image;
use crate::io::output::ensure_writable_dir;
use crate::io::tensors::{file_name, read_id_embedding};
use crate::models::{load_engine, random_seed};
use crate::source::DirSource;

/// `generate` options.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model folder in the diffusers layout, or a single-file SD1.5 checkpoint (`.safetensors`
    /// with `model.diffusion_model.*` keys; then `--tokenizer` is required).
    #[arg(long, value_name = "DIR|FILE")]
    pub model: PathBuf,
    /// Tokenizer for a single-file checkpoint: a transformers tokenizer folder or open_clip's
    /// `bpe_simple_vocab_16e6.txt.gz`.
    #[arg(long, value_name = "DIR|FILE")]
    pub tokenizer: Option<PathBuf>,
    /// What to draw.
    #[arg(long)]
    pub prompt: String,
    /// What to steer away from.
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Denoising steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Classifier-free guidance scale (default 7.5; 5 with --face, as the official pipeline).
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Sampler: euler, euler-a, ddim or dpmpp-2m-karras.
    #[arg(long, default_value = "euler", value_parser = parse_scheduler)]
    pub scheduler: SchedulerKind,
    /// Seed of the initial noise (random when absent); image k uses seed + k.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Image width in pixels (default 512).
    #[arg(long)]
    pub width: Option<usize>,
    /// Image height in pixels (default 512; 768 with --face, as the official infer.py).
    #[arg(long)]
    pub height: Option<usize>,
    /// How many images.
    #[arg(long, default_value_t = 1)]
    pub num_images: usize,
    /// With --face: make N candidates from consecutive seeds and keep the --num-images most
    /// like the face (ArcFace cosine), best first; every candidate's score is printed.
    #[arg(long, value_name = "N")]
    pub best_of: Option<usize>,
    /// How many of the images share one UNet batch (each comes out as it would alone).
    /// Default: up to 4 on a GPU, 1 on the CPU backend (where batching gains nothing).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub batch_size: Option<u16>,
    /// Weight file variant, e.g. fp16 for `*.fp16.safetensors`.
    #[arg(long)]
    pub variant: Option<String>,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
    /// ConsistentID: the reference face photo. The model folder then also holds
    /// image_encoder/, ConsistentID-v1.bin, face_parsing.pth and (unless --id-embedding)
    /// buffalo_l's det_10g.onnx and w600k_r50.onnx.
    #[arg(long, value_name = "IMG")]
    pub face: Option<PathBuf>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// ConsistentID: prompt style. Default `consistentid` (infer.py's wrapping and negative
    /// prompt); also the official presets by name (`Photographic (Default)`, `Cinematic`, …,
    /// `(No style)`).
    #[arg(long)]
    pub style: Option<String>,
    /// ConsistentID: steps `i <= merge-step` use the text-only prompt (official default 30).
    #[arg(long, default_value_t = 30)]
    pub merge_step: usize,
    /// Replace existing files named `{seed}-{k}.png` instead of picking a free name (input
    /// files are never replaced).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub photo: PhotoArgs,
}

/// The command line as a request (defaults: `generate --face` follows infer.py, plain
/// `generate` diffusers' txt2img).
pub fn request(args: &GenerateArgs) -> GenerationRequest {
    let base = if args.face.is_some() {
        GenerationRequest::consistentid(&args.prompt)
    } else {
        GenerationRequest::txt2img(&args.prompt)
    };
    GenerationRequest {
        negative_prompt: args.negative_prompt.clone(),
        style: args.style.clone(),
        num_inference_steps: args.steps,
        guidance_scale: args.guidance.unwrap_or(base.guidance_scale),
        start_merge_step: base.start_merge_step.map(|_| args.merge_step),
        seed: args.seed,
        width: args.width.unwrap_or(base.width),
        height: args.height.unwrap_or(base.height),
        num_outputs: args.num_images,
        scheduler: args.scheduler,
        best_of: args.best_of,
        ..base
    }
}

/// Validates a request, printing its warnings; field errors name the command-line flags.
pub fn validate(request: GenerationRequest) -> Result<GenerationRequest> {
    match request.validate() {
        Ok((request, warnings)) => {
            for w in warnings {
                eprintln!("warning: {}", flag_names(&w));
            }
            Ok(request)
        }
        Err(Error::InvalidFields(fields)) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", flag(&f.field), flag_names(&f.message)))
                .collect();
            bail!("{}", parts.join("; "))
        }
        Err(e) => Err(e.into()),
    }
}

/// The flag of a request field.
fn flag(field: &str) -> &str {
    match field {
        "num_inference_steps" => "--steps",
        "guidance_scale" => "--guidance",
        "start_merge_step" => "--merge-step",
        "num_outputs" => "--num-images",
        "negative_prompt" => "--negative-prompt",
        "width" => "--width",
        "height" => "--height",
        "style" => "--style",
        "prompt" => "--prompt",
        "best_of" => "--best-of",
        other => other,
    }
}

fn flag_names(text: &str) -> String {
    [
        "num_outputs",
        "start_merge_step",
        "negative_prompt",
        "prompt",
    ]
    .iter()
    .fold(text.to_string(), |t, f| t.replacen(f, flag(f), 1))
}

/// Runs `generate`: every check first (request, inputs, output folder), then the models, then
/// the engine with a terminal sink.
pub fn run(args: &GenerateArgs, device: DeviceChoice, dtype: DtypeChoice) -> Result<()> {
    let face = args.face.as_deref().map(read_image).transpose()?;
    let face_with_path = face.as_ref().zip(args.face.as_deref());
    let photo = args.photo.job(face_with_path, args.steps)?;
    let into = args.photo.into_job()?;
    let controls = args.photo.controls(photo.is_some() || into.is_some())?;
    let mut request = request(args);
    if let Some(p) = &photo {
        let (w, h) = default_size(p.input.image.width, p.input.image.height);
        request.width = args.width.unwrap_or(w);
        request.height = args.height.unwrap_or(h);
    }
    if into.is_some() {
        // The crop is square: one side for both.
        let side = args.width.or(args.height).unwrap_or(512);
        if args.width.zip(args.height).is_some_and(|(w, h)| w != h) {
            bail!("--into works on a square crop: give --width (or equal --width and --height)");
        }
        (request.width, request.height) = (side, side);
    }
    let mut request = validate(request)?;
    if let Some(face) = face {
        return run_face(args, face, (photo, controls, into), request, device, dtype);
    }
    if args.identity.id_embedding.is_some() {
        bail!("--id-embedding needs --face (ConsistentID generation)");
    }
    check_model_path(&args.model)?;
    ensure_writable_dir(&args.out)?;
    let (device, backend) = select(device)?;
    let started = Instant::now();
    let sd = load_model(
        &args.model,
        args.tokenizer.as_deref(),
        args.variant.as_deref(),
        dtype.resolve(backend),
        &device,
    )?;
    sd.latent_shape(request.width, request.height)?;
    let mut photo = photo;
    if let Some(p) = photo.as_mut() {
        load_controls(controls, p, dtype.resolve(backend), &device)?;
        p.check(&sd, request.num_inference_steps)
            .map_err(flag_errors)?;
    }
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    let seed = *request.seed.get_or_insert_with(random_seed);
    println!("seed: {seed}");
    let mut sink = TerminalSink::new(args, false);
    let batch = batch_size(args, backend);
    let result = run_txt2img(
        &sd,
        &request,
        &file_name(&args.model),
        batch,
        photo.as_ref(),
        &mut sink,
    );
    sink.finish(result)
}

/// `generate --face`: inputs and the output folder are checked first, the models loaded once,
/// then every image from its own seed.
fn run_face(
    args: &GenerateArgs,
    face: RgbImage,
    (mut photo, controls, into): (Option<PhotoJob>, Vec<ControlFlags>, Option<IntoJob>),
    mut request: GenerationRequest,
    device: DeviceChoice,
    dtype: DtypeChoice,
) -> Result<()> {
    let face_path = args.face.as_ref().context("--face is required")?;
    if !args.model.is_dir() {
        bail!(
            "--face needs a model folder (SD1.5 diffusers layout + image_encoder/, ConsistentID-v1.bin, face_parsing.pth)"
        );
    }
    if let Some(into) = &into {
        crate::commands::photo_in::check_detector(into, &args.model)?;
    }
    ensure_writable_dir(&args.out)?;
    let identity = match &args.identity.id_embedding {
        Some(path) => IdentitySource::Embedding(read_id_embedding(path)?),
        None => {
            require_face_analysis(&DirSource::open(&args.model)?)?;
            IdentitySource::Detect {
                choice: args.identity.face_index,
                allow_no_face: args.identity.allow_no_face,
            }
        }
    };
    let (device, backend) = select(device)?;

    let started = Instant::now();
    let mut engine = load_engine(
        &args.model,
        args.identity.channel_order.into(),
        dtype.resolve(backend),
        &device,
    )?;
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    let paste = match &into {
        Some(into) => {
            let (job, paste) = engine.prepare_into(into).map_err(flag_errors)?;
            photo = Some(job);
            Some(paste)
        }
        None => None,
    };
    if let Some(p) = photo.as_mut() {
        load_controls(controls, p, dtype.resolve(backend), &device)?;
    }
    let seed = *request.seed.get_or_insert_with(random_seed);
    let job = FaceJob {
        request,
        face,
        face_name: file_name(face_path),
        identity,
        face_parsing: None,
        photo,
    };
    engine.check(&job).map_err(flag_errors)?;
    engine.max_batch = batch_size(args, backend);
    let mut sink = TerminalSink::new(args, true);
    sink.seed = Some(seed);
    let result = match &paste {
        Some(paste) => engine
            .run(
                &job,
                &mut PasteSink {
                    inner: &mut sink,
                    paste,
                },
            )
            .map(|made| made.into_iter().map(|g| paste.pasted(g)).collect()),
        None => engine.run(&job, &mut sink),
    };
    sink.finish(result)
}

/// `--batch-size`, or the backend's default.
fn batch_size(args: &GenerateArgs, backend: &str) -> usize {
    args.batch_size
        .map_or_else(|| default_batch(backend), usize::from)
}

/// `--model` must be a folder or a `.safetensors` checkpoint; anything else gets a message
/// saying what it is.
pub fn check_model_path(model: &Path) -> Result<()> {
    if model.is_dir() {
        return Ok(());
    }
    if !model.exists() {
        bail!("no model folder or checkpoint file at {}", model.display());
    }
    let ext = model
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext != "safetensors" {
        bail!(
            "--model {} is not a model folder or a .safetensors checkpoint (a file of type `.{ext}`)",
            model.display()
        );
    }
    Ok(())
}

/// Loads a diffusers folder, or a single-file SD1.5 checkpoint with the SD1.5 configs and the
/// given tokenizer.
pub fn load_model(
    model: &Path,
    tokenizer: Option<&Path>,
    variant: Option<&str>,
    dtype: DType,
    device: &Device,
) -> Result<StableDiffusion> {
    if model.is_dir() {
        return Ok(StableDiffusion::load(
            &DirSource::open(model)?,
            variant,
            dtype,
            device,
        )?);
    }
    if !model.is_file() {
        bail!("no model folder or checkpoint file at {}", model.display());
    }
    let Some(tokenizer) = tokenizer else {
        bail!(
            "{} is a single-file checkpoint: give its tokenizer with --tokenizer DIR (a transformers tokenizer folder) or --tokenizer bpe_simple_vocab_16e6.txt.gz",
            model.display()
        );
    };
    let tokenizer = if tokenizer.is_dir() {
        ClipTokenizer::from_source(&DirSource::open(tokenizer)?, ".")?
    } else {
        let bytes = std::fs::read(tokenizer)
            .with_context(|| format!("cannot read {}", tokenizer.display()))?;
        ClipTokenizer::from_bpe_gz(&bytes)?
    };
    let dir = model
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = model
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut configs = SingleFileConfigs::sd15();
    // An inpainting checkpoint (sd-v1-5-inpainting and its fine-tunes) takes 9 channels.
    if let Some(channels) = single_file_in_channels(model)? {
        configs.unet.in_channels = channels;
    }
    Ok(StableDiffusion::load_single_file(
        &DirSource::open(dir)?,
        &file,
        tokenizer,
        &configs,
        dtype,
        device,
    )?)
}

/// The UNet's input channels of a single-file checkpoint, from its safetensors header alone
/// (`model.diffusion_model.input_blocks.0.0.weight`'s second dimension).
pub fn single_file_in_channels(path: &Path) -> Result<Option<usize>> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut len = [0u8; 8];
    if f.read_exact(&mut len).is_err() {
        return Ok(None);
    }
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Ok(None);
    }
    let mut header = vec![0u8; len as usize];
    if f.read_exact(&mut header).is_err() {
        return Ok(None);
    }
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&header) else {
        return Ok(None);
    };
    Ok(
        header["model.diffusion_model.input_blocks.0.0.weight"]["shape"][1]
            .as_u64()
            .map(|c| c as usize),
    )
}
