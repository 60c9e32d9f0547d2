//! `consistentid generate`: text-to-image from a diffusers SD1.x folder to PNG files carrying
//! their generation parameters (the A1111 `parameters` text chunk).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use burn::tensor::Tensor;
use clap::Args;
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::pipeline::{SingleFileConfigs, StableDiffusion, Txt2ImgRequest};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;

use crate::device::{DeviceChoice, select};
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
}

/// Parses a `--scheduler` name.
pub fn parse_scheduler(name: &str) -> Result<SchedulerKind, String> {
    SchedulerKind::from_name(name).ok_or_else(|| {
        format!("unknown scheduler `{name}` (euler, euler-a, ddim, dpmpp-2m-karras)")
    })
}

pub fn sampler_name(kind: SchedulerKind) -> &'static str {
    match kind {
        SchedulerKind::Euler => "Euler",
        SchedulerKind::EulerAncestral => "Euler a",
        SchedulerKind::Ddim => "DDIM",
        SchedulerKind::DpmSolverMultistepKarras => "DPM++ 2M Karras",
    }
}

/// Runs `generate`.
pub fn run(args: &GenerateArgs, device: DeviceChoice) -> Result<()> {
    if args.num_images == 0 || args.steps == 0 {
        bail!("--num-images and --steps must be at least 1");
    }
    if args.face.is_some() {
        return crate::generate_face::run(args, device);
    }
    if args.style.is_some() || args.identity.id_embedding.is_some() {
        bail!("--style and --id-embedding need --face (ConsistentID generation)");
    }
    let (width, height) = (args.width.unwrap_or(512), args.height.unwrap_or(512));
    let guidance = args.guidance.unwrap_or(7.5);
    let (device, backend) = select(device)?;
    let started = Instant::now();
    let sd = load_model(
        &args.model,
        args.tokenizer.as_deref(),
        args.variant.as_deref(),
        &device,
    )?;
    let shape = sd.latent_shape(width, height)?;
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let seed = args.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}");
    let request = Txt2ImgRequest {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative_prompt.clone(),
        steps: args.steps,
        guidance_scale: guidance,
        scheduler: args.scheduler,
    };
    let context = sd.encode_prompt(&request.prompt, request.negative_prompt.as_deref())?;
    let model_name = args
        .model
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string());
    let terminal = std::io::stderr().is_terminal();
    for k in 0..args.num_images {
        let image_seed = seed.wrapping_add(k as u64);
        let mut rng = NoiseRng::new(image_seed);
        let init = rng.tensor(shape, &device);
        let t0 = Instant::now();
        let latents = sd.denoise(&request, context.clone(), init, &mut rng, &mut |i, n| {
            if terminal {
                eprint!("\r  image {}/{}: step {i}/{n}", k + 1, args.num_images);
            }
        })?;
        if terminal {
            eprintln!();
        }
        let image = sd.decode(latents);
        let parameters = format!(
            "{}\nNegative prompt: {}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}",
            args.prompt,
            args.negative_prompt.as_deref().unwrap_or(""),
            args.steps,
            sampler_name(args.scheduler),
            guidance,
            image_seed,
            width,
            height,
            model_name
        );
        let path = args.out.join(format!("{image_seed}-{k}.png"));
        write_png(&path, image, &parameters)?;
        println!("{} ({:.1}s)", path.display(), t0.elapsed().as_secs_f64());
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

/// Writes `[1, 3, H, W]` in [0, 1] as an 8-bit RGB PNG with a `parameters` text chunk
/// (`round(x * 255)`, as diffusers' `numpy_to_pil`).
pub fn write_png(path: &Path, image: Tensor<4>, parameters: &str) -> Result<()> {
    let [_, c, h, w] = image.dims();
    if c != 3 {
        bail!("expected an RGB image, got {c} channels");
    }
    // [1, 3, h, w] -> [h, w, 3]
    let hwc = image.reshape([c, h, w]).permute([1, 2, 0]);
    let values = hwc
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let bytes: Vec<u8> = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.add_text_chunk("parameters".into(), parameters.into())?;
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&bytes)?;
    writer.finish()?;
    Ok(())
}
