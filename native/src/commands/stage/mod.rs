//! `consistentid stage`: runs one stage of the pipeline on explicit inputs and writes its
//! outputs as safetensors with fixed tensor names, so each can be compared against the
//! reference Python implementation.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device, Tensor};
use clap::{Args, Subcommand};
use consistentid_core::clip::{ClipTextModel, ClipTokenizer};
use consistentid_core::pipeline::{StableDiffusion, Txt2ImgRequest};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::{NamedTensor, TensorFile};
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_core::vae::AutoencoderKL;

use crate::commands::args::TensorArgs;
use crate::device::{DeviceChoice, DtypeChoice, select};
use crate::io::output::ensure_writable_file;
use crate::io::tensors::write;
use crate::source::DirSource;

pub mod consistentid;
pub mod face;

/// The stages. Each reads a diffusers model folder (`--model DIR`) and writes `--out FILE`.
#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// CLIP tokenizer (`tokenizer/`, with ConsistentID's `<|image|>` = 49408 and
    /// `<|facial|>` = 49409 added) → `input_ids` (i64 [1, 77]): BOS, tokens truncated to 75,
    /// EOS, right-padded with the pad token, as `tokenizer(prompt, padding="max_length",
    /// truncation=True)`.
    Tokenize(PromptArgs),
    /// CLIP text encoder (`tokenizer/` + `text_encoder/`) → `last_hidden_state` (after the final
    /// layer norm) and `penultimate_hidden_state` (`hidden_states[-2]`, no final norm), both
    /// f32 [1, 77, hidden], plus the `input_ids` it encoded.
    TextEncoder(PromptArgs),
    /// VAE decoder (`vae/`): input `latents` [B, C, h, w], diffusion latents (still multiplied
    /// by the scaling factor) → `image` [B, 3, 8h, 8w] (the raw decoder output, about [-1, 1]).
    VaeDecode(TensorArgs),
    /// VAE encoder (`vae/`): input `image` [B, 3, H, W] in [-1, 1] → `latent_mean` (the latent
    /// distribution's mean, not scaled) and `latent_logvar`.
    VaeEncode(TensorArgs),
    /// UNet (`unet/`): inputs `sample` [B, C, h, w], `timestep` [B] (i64 or float) and
    /// `encoder_hidden_states` [B, L, D] → `sample` (the model output, [B, C, h, w]).
    Unet(TensorArgs),
    /// The whole text-to-image loop (`tokenizer/`, `text_encoder/`, `unet/`, `vae/`,
    /// `scheduler/`): input `init_latents` [1, C, h, w] (standard normal, scaled here by the
    /// scheduler's init_noise_sigma as diffusers' `latents=`; the image size follows from it)
    /// → `image` [1, 3, H, W] in [0, 1], as diffusers returns with `output_type="pt"`.
    Txt2img(Txt2ImgArgs),
    /// Runs any ONNX graph whose ops the built-in executor supports (the op set of insightface's
    /// SCRFD / ArcFace models and BlazeFace): inputs and outputs keep their graph names.
    Onnx(face::OnnxArgs),
    /// Face detection with SCRFD, MTCNN or BlazeFace → `boxes`, `scores`, `landmarks`.
    Detect(face::DetectArgs),
    /// Alignment (insightface `norm_crop`) and ArcFace → `aligned`, `embedding`,
    /// `normed_embedding`.
    Arcface(face::ArcfaceArgs),
    /// CLIPImageProcessor (Pillow-exact) and the CLIP vision tower (`image_encoder/`) →
    /// `pixel_values`, `penultimate_hidden_state`, `image_embeds`.
    ClipVision(face::ClipVisionArgs),
    /// BiSeNet face parsing (Pillow 512×512 bilinear input) → `pixel_values`, `logits`
    /// [1,19,512,512], `labels` (i64 [512,512]).
    Bisenet(face::BisenetArgs),
    /// The official facial regions (Face, Eye, Ear, Nose, Mouth) from the BiSeNet label map →
    /// `masks` [5,512,512] (holes filled, zero-padded), `region_valid` (i64 [5]), and
    /// `region_names` in the metadata.
    FaceRegions(face::FaceRegionsArgs),
    /// The region images (photo composited over black with each region mask) through
    /// CLIPImageProcessor → `region_pixel_values` [5,3,224,224] (absent regions zero).
    RegionImages(face::BisenetArgs),
    /// ConsistentID's ID projection (`ConsistentID-v1.bin` in the model folder): inputs
    /// `id_embedding` [1,512] and `clip_penultimate` [1,257,C] → `id_tokens` [1,4,D].
    IdTokens(TensorArgs),
    /// ConsistentID's FacialEncoder: inputs `prompt_embeds` [1,77,D], `region_hidden_states`
    /// [1,5,257,C], `facial_token_mask` (i64 [1,77]), `facial_token_idx_mask` (i64 [1,5]) →
    /// `prompt_embeds` [1,77,D] with the facial tokens fused.
    FacialEncoder(TensorArgs),
    /// The ConsistentID pipeline up to denoising (`--model DIR --face IMG [--id-embedding F]
    /// --prompt P --negative-prompt N`; prompts verbatim) → `input_ids` (markers removed),
    /// `facial_token_mask`, `facial_token_idx`, `facial_token_idx_mask` (i64) and the
    /// conditionings `null`, `augmented`, `text_only` [1,81,D].
    ConsistentidPrompt(consistentid::PipelineArgs),
    /// The whole ConsistentID pipeline from `--init-latents` (Euler) → `image` [1,3,H,W] in
    /// [0, 1].
    Consistentid(consistentid::DenoiseArgs),
}

/// Arguments of `stage txt2img`.
#[derive(Debug, Args)]
pub struct Txt2ImgArgs {
    #[command(flatten)]
    pub tensors: TensorArgs,
    /// The prompt.
    #[arg(long)]
    pub prompt: String,
    /// The negative prompt (default: empty, as diffusers).
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Denoising steps.
    #[arg(long)]
    pub steps: usize,
    /// Classifier-free guidance scale.
    #[arg(long)]
    pub guidance: f64,
    /// euler, euler-a, ddim or dpmpp-2m-karras.
    #[arg(long, value_parser = crate::commands::args::parse_scheduler)]
    pub scheduler: SchedulerKind,
    /// Seed of the ancestral noise (euler-a only).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Arguments shared by the text stages.
#[derive(Debug, Args)]
pub struct PromptArgs {
    /// Model folder in the diffusers layout.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The prompt, used verbatim.
    #[arg(long)]
    pub prompt: String,
    /// Output safetensors file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

impl StageCommand {
    /// The output file and the files read (the output may be none of them).
    fn files(&self) -> (&Path, Vec<&Path>) {
        use StageCommand as S;
        match self {
            S::Tokenize(a) | S::TextEncoder(a) => (&a.out, vec![a.model.as_path()]),
            S::VaeDecode(a)
            | S::VaeEncode(a)
            | S::Unet(a)
            | S::IdTokens(a)
            | S::FacialEncoder(a) => (&a.out, vec![&a.model, &a.input]),
            S::Txt2img(a) => (&a.tensors.out, vec![&a.tensors.model, &a.tensors.input]),
            S::Onnx(a) => (&a.out, vec![&a.model, &a.input]),
            S::Detect(a) => (&a.out, vec![&a.weights, &a.image]),
            S::Arcface(a) => (&a.out, vec![&a.weights, &a.image]),
            S::ClipVision(a) => (&a.out, vec![&a.model, &a.image]),
            S::Bisenet(a) | S::RegionImages(a) => (&a.out, vec![&a.weights, &a.image]),
            S::FaceRegions(a) => (&a.out, vec![&a.image]),
            S::ConsistentidPrompt(a) => (&a.out, vec![&a.model, &a.face]),
            S::Consistentid(a) => (
                &a.pipeline.out,
                vec![&a.pipeline.model, &a.pipeline.face, &a.init_latents],
            ),
        }
    }
}

/// Runs a stage, after checking that its output can be written.
pub fn run(stage: StageCommand, device: DeviceChoice, dtype: DtypeChoice) -> Result<()> {
    let dtype = dtype.stage();
    let (out, inputs) = stage.files();
    ensure_writable_file(out, &inputs)?;
    match stage {
        StageCommand::Tokenize(args) => tokenize(&args),
        StageCommand::TextEncoder(args) => text_encoder(&args, device, dtype),
        StageCommand::VaeDecode(args) => vae_decode(&args, device, dtype),
        StageCommand::VaeEncode(args) => vae_encode(&args, device, dtype),
        StageCommand::Unet(args) => unet(&args, device, dtype),
        StageCommand::Txt2img(args) => txt2img(&args, device, dtype),
        StageCommand::Onnx(args) => face::onnx(&args, device),
        StageCommand::Detect(args) => face::detect(&args, device),
        StageCommand::Arcface(args) => face::arcface(&args, device),
        StageCommand::ClipVision(args) => face::clip_vision(&args, device, dtype),
        StageCommand::Bisenet(args) => face::bisenet(&args, device),
        StageCommand::FaceRegions(args) => face::face_regions(&args, device),
        StageCommand::RegionImages(args) => face::region_images(&args, device),
        StageCommand::IdTokens(args) => consistentid::id_tokens(&args, device),
        StageCommand::FacialEncoder(args) => consistentid::facial_encoder(&args, device),
        StageCommand::ConsistentidPrompt(args) => consistentid::consistentid_prompt(&args, device),
        StageCommand::Consistentid(args) => consistentid::consistentid(&args, device, dtype),
    }
}

fn open_model(dir: &Path) -> Result<DirSource> {
    Ok(DirSource::open(dir)?)
}

fn tokenize(args: &PromptArgs) -> Result<()> {
    let source = open_model(&args.model)?;
    let tokenizer = ClipTokenizer::from_source(&source, "tokenizer")?.with_consistentid_tokens();
    let len = tokenizer.model_max_length();
    let ids: Vec<i64> = tokenizer
        .encode_padded(&args.prompt, len)
        .into_iter()
        .map(i64::from)
        .collect();
    write(
        &args.out,
        &[NamedTensor::from_i64("input_ids", vec![1, len], &ids)],
        &args.prompt,
    )
}

fn text_encoder(args: &PromptArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let source = open_model(&args.model)?;
    let (device, _) = select(device)?;
    let tokenizer = ClipTokenizer::from_source(&source, "tokenizer")?;
    let model = ClipTextModel::load(&source, "text_encoder", None, dtype, &device)?;
    let len = tokenizer.model_max_length();
    let ids = tokenizer.encode_padded(&args.prompt, len);
    let vocab = model.text_model.embeddings.token_embedding.weight.dims()[0];
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        bail!(
            "token id {bad} is outside the text encoder's vocabulary of {vocab}: tokenizer and text_encoder do not belong together"
        );
    }
    let out = model.forward_ids(std::slice::from_ref(&ids), &device);
    let ids: Vec<i64> = ids.into_iter().map(i64::from).collect();
    write(
        &args.out,
        &[
            NamedTensor::from_i64("input_ids", vec![1, len], &ids),
            NamedTensor::f32("last_hidden_state", out.last_hidden_state.clone()),
            NamedTensor::f32("penultimate_hidden_state", out.penultimate()),
        ],
        &args.prompt,
    )
}

/// What every tensor stage starts from: the model folder, the device and the input file's bytes.
fn open_tensor_stage(
    args: &TensorArgs,
    device: DeviceChoice,
) -> Result<(DirSource, Device, Vec<u8>)> {
    let source = open_model(&args.model)?;
    let (device, _) = select(device)?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read input {}", args.input.display()))?;
    Ok((source, device, bytes))
}

fn vae_decode(args: &TensorArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let (source, device, bytes) = open_tensor_stage(args, device)?;
    let vae = AutoencoderKL::load(&source, "vae", None, dtype, &device)?;
    let input = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
    let latents = input.tensor::<4>("latents", &device)?;
    check_channels(
        "latents",
        latents.dims()[1],
        vae.post_quant_conv.weight.dims()[0],
    )?;
    let image = vae.decode_latents(latents);
    write(&args.out, &[NamedTensor::f32("image", image)], "")
}

fn vae_encode(args: &TensorArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let (source, device, bytes) = open_tensor_stage(args, device)?;
    let vae = AutoencoderKL::load(&source, "vae", None, dtype, &device)?;
    let input = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
    let image = input.tensor::<4>("image", &device)?;
    check_channels(
        "image",
        image.dims()[1],
        vae.encoder.conv_in.weight.dims()[1],
    )?;
    let dist = vae.encode(image);
    write(
        &args.out,
        &[
            NamedTensor::f32("latent_mean", dist.mean),
            NamedTensor::f32("latent_logvar", dist.logvar),
        ],
        "",
    )
}

fn unet(args: &TensorArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let (source, device, bytes) = open_tensor_stage(args, device)?;
    let unet = UNet2DConditionModel::load(&source, "unet", None, dtype, &device)?;
    let input = TensorFile::parse_input(&args.input.display().to_string(), &bytes)?;
    let sample = input.tensor::<4>("sample", &device)?;
    let context = input.tensor::<3>("encoder_hidden_states", &device)?;
    // Timesteps may be saved as integers (diffusers' DDIM/DPM) or floats (Euler).
    let t: Vec<f32> = match input.i64("timestep") {
        Ok((t, _)) => t.into_iter().map(|v| v as f32).collect(),
        Err(_) => input.f32("timestep")?.0,
    };
    let batch = sample.dims()[0];
    if t.len() != batch || context.dims()[0] != batch {
        bail!(
            "`timestep` ({}) and `encoder_hidden_states` ({}) must have the sample's batch size {batch}",
            t.len(),
            context.dims()[0]
        );
    }
    check_channels("sample", sample.dims()[1], unet.conv_in.weight.dims()[1])?;
    let cross_dim = unet.mid_block.attentions[0]
        .transformer_blocks
        .first()
        .map(|b| b.attn2.to_k.weight.dims()[0]);
    if let Some(want) = cross_dim {
        check_channels("encoder_hidden_states", context.dims()[2], want)?;
    }
    let timesteps = Tensor::<1>::from_floats(t.as_slice(), &device);
    let out = unet.forward(sample, timesteps, context);
    write(&args.out, &[NamedTensor::f32("sample", out)], "")
}

fn txt2img(args: &Txt2ImgArgs, device: DeviceChoice, dtype: DType) -> Result<()> {
    let t = &args.tensors;
    let (source, device, bytes) = open_tensor_stage(t, device)?;
    let sd = StableDiffusion::load(&source, None, dtype, &device)?;
    let input = TensorFile::parse_input(&t.input.display().to_string(), &bytes)?;
    let init = input.tensor::<4>("init_latents", &device)?;
    check_channels(
        "init_latents",
        init.dims()[1],
        sd.unet.conv_in.weight.dims()[1],
    )?;
    let request = Txt2ImgRequest {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative_prompt.clone(),
        steps: args.steps,
        guidance_scale: args.guidance,
        scheduler: args.scheduler,
    };
    let image = sd.txt2img(
        &request,
        init,
        &mut NoiseRng::new(args.seed),
        &mut |_, _| {},
    )?;
    write(&t.out, &[NamedTensor::f32("image", image)], &args.prompt)
}

fn check_channels(name: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        bail!("input `{name}` has {got} channels, the model expects {want}");
    }
    Ok(())
}
