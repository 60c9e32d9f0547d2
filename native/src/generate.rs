//! `consistentid generate`: text-to-image from a diffusers SD1.x folder to PNG files carrying
//! their generation parameters (the A1111 `parameters` text chunk).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use burn::tensor::Tensor;
use clap::Args;
use consistentid_core::Error;
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::pipeline::{
    GenerationRequest, SingleFileConfigs, StableDiffusion, Txt2ImgRequest,
};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;

use crate::device::{DeviceChoice, select};
use crate::io::output::{Collision, ensure_writable_dir, write_new};
use crate::io::png::encode_png;
use crate::progress::StepProgress;
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
    pub identity: crate::stage_consistentid::IdentityArgs,
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
}

/// Parses a `--scheduler` name.
pub fn parse_scheduler(name: &str) -> Result<SchedulerKind, String> {
    SchedulerKind::from_name(name).ok_or_else(|| {
        format!(
            "unknown scheduler `{name}` ({})",
            SchedulerKind::NAMES.join(", ")
        )
    })
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
                .map(|f| format!("{} {}", flag(&f.field), f.message))
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
        other => other,
    }
}

fn flag_names(text: &str) -> String {
    ["start_merge_step", "negative_prompt", "prompt"]
        .iter()
        .fold(text.to_string(), |t, f| t.replacen(f, flag(f), 1))
}

/// Runs `generate`: every check first (request, inputs, output folder), then the models.
pub fn run(args: &GenerateArgs, device: DeviceChoice) -> Result<()> {
    let request = validate(request(args))?;
    if args.face.is_some() {
        return crate::generate_face::run(args, request, device);
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
        &device,
    )?;
    let shape = sd.latent_shape(request.width, request.height)?;
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    warn_truncated(&sd.tokenizer, &request.prompt, "prompt");
    if let Some(n) = &request.negative_prompt {
        warn_truncated(&sd.tokenizer, n, "negative prompt");
    }
    let seed = request.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}");
    let txt = Txt2ImgRequest {
        prompt: request.prompt.clone(),
        negative_prompt: request.negative_prompt.clone(),
        steps: request.num_inference_steps,
        guidance_scale: request.guidance_scale,
        scheduler: request.scheduler,
    };
    let context = sd.encode_prompt(&txt.prompt, txt.negative_prompt.as_deref())?;
    let model_name = file_name(&args.model);
    let inputs = input_files(args);
    for k in 0..request.num_outputs {
        let image_seed = seed.wrapping_add(k as u64);
        let mut rng = NoiseRng::new(image_seed);
        let init = rng.tensor(shape, &device);
        let t0 = Instant::now();
        let mut progress = StepProgress::new(format!("image {}/{}", k + 1, request.num_outputs));
        let latents = sd.denoise(&txt, context.clone(), init, &mut rng, &mut |i, n| {
            progress.step(i, n)
        })?;
        let image = sd.decode(latents);
        let parameters = format!(
            "{}\nNegative prompt: {}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}",
            request.prompt,
            request.negative_prompt.as_deref().unwrap_or(""),
            request.num_inference_steps,
            request.scheduler.sampler_name(),
            request.guidance_scale,
            image_seed,
            request.width,
            request.height,
            model_name
        );
        let path = save_image(args, &inputs, image_seed, k, image, &parameters)?;
        println!("{} ({:.1}s)", path.display(), t0.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Writes image `k` as `{seed}-{k}.png` (or a free variant of the name) in `--out`.
pub fn save_image(
    args: &GenerateArgs,
    inputs: &[&Path],
    seed: u64,
    k: usize,
    image: Tensor<4>,
    parameters: &str,
) -> Result<PathBuf> {
    let png = encode_png(image, parameters)?;
    let collision = if args.overwrite {
        Collision::Overwrite
    } else {
        Collision::NextFreeName
    };
    write_new(
        &args.out,
        &format!("{seed}-{k}"),
        "png",
        &png,
        collision,
        inputs,
    )
}

/// The files a `generate` run reads (never to be written over).
pub fn input_files(args: &GenerateArgs) -> Vec<&Path> {
    [
        Some(args.model.as_path()),
        args.tokenizer.as_deref(),
        args.face.as_deref(),
        args.identity.id_embedding.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A file's name without its folder (kept in PNG metadata instead of a local path).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string())
}

/// Warns with the words CLIP will not see, as diffusers does.
pub fn warn_truncated(tokenizer: &ClipTokenizer, text: &str, what: &str) {
    if let Some(cut) = tokenizer.truncated_text(text) {
        eprintln!(
            "warning: the {what} is longer than CLIP's {} tokens; this part is cut: \"{cut}\"",
            tokenizer.model_max_length()
        );
    }
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
    device: &Device,
) -> Result<StableDiffusion> {
    if model.is_dir() {
        return Ok(StableDiffusion::load(
            &DirSource::open(model)?,
            variant,
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
    Ok(StableDiffusion::load_single_file(
        &DirSource::open(dir)?,
        &file,
        tokenizer,
        &SingleFileConfigs::sd15(),
        device,
    )?)
}

pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // Four decimal digits fewer than u64::MAX keeps seeds easy to type back.
    RandomState::new().hash_one(Instant::now()) % 1_000_000_000_000
}
