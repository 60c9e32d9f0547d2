//! `consistentid train`: fine-tunes ConsistentID's ID-preservation network (ProjPlus, the
//! FacialEncoder and the UNet's attention processors) with the noise loss and the facial
//! attention localization loss, on a dataset in the official training JSON layout, starting
//! from the model folder's `ConsistentID-v1.bin` (or `--init`'s). Writes `metrics.csv` (one row a step),
//! checkpoints every `--save-every` steps under `checkpoints/` (`--resume` continues from the
//! newest, exactly as the uninterrupted run), and at the end `ConsistentID-v1.bin` in the
//! released layout (the official pipeline loads it) and the same tensors as safetensors.

mod samples;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device};
use clap::Args;
use consistentid_core::pipeline::consistentid::{CHECKPOINT, ConsistentIdPipeline};
use consistentid_core::scheduler::ForwardProcess;
use consistentid_core::weights::{WeightSource, torch_file};
use consistentid_train::localization::LocVariant;
use consistentid_train::network::{Network, TrainAdapter};
use consistentid_train::precision::{self, Precision};
use consistentid_train::trainer::{Dataset, FrozenEncoders, Record, TrainConfig, Trainer};
use consistentid_train::{Result as TrainResult, TrainError, checkpoint, export, optimizer, plot};

use crate::device::{DeviceChoice, select};
use crate::io::image::read_image;
use crate::io::output::write_atomic;
use crate::source::DirSource;

/// `train` options.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The training JSON: a list of records with `resize_IMG`, `parsing_mask_IMG`, `vqa_llva`,
    /// `vqa_llva_more_face_detail` and optionally `id_embed_file_origin` /
    /// `id_embed_file_resize` (the official FGID layout).
    #[arg(long, value_name = "FILE")]
    pub dataset: PathBuf,
    /// Folder the images are relative to (default: the JSON's folder).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Folder the label maps are relative to (default: --images).
    #[arg(long, value_name = "DIR")]
    pub parsing: Option<PathBuf>,
    /// Folder the face embeddings are relative to (default: --images).
    #[arg(long, value_name = "DIR")]
    pub faceid: Option<PathBuf>,
    /// ConsistentID model folder: the base SD1.5, CLIP ViT-H, and the `ConsistentID-v1.bin`
    /// training starts from.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// A `ConsistentID-v1.bin` to start from instead of the model folder's (its shapes must fit
    /// the base model; a mismatch is refused before any step).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Start from fresh weights instead of the checkpoint's values (its architecture is kept),
    /// initialised as the official train.py: LoRA down N(0, 1/rank) and up 0, to_k_ip/to_v_ip
    /// copies of the UNet's to_k/to_v, PyTorch's defaults elsewhere; drawn from --seed.
    #[arg(long, conflicts_with = "resume")]
    pub from_scratch: bool,
    /// The run's folder (metrics, checkpoints, exported weights).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub steps: u64,
    /// Samples per micro-batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Micro-batches per optimisation step, their gradients averaged: `--batch 2 --grad-accum 4`
    /// is the official 4-GPU × 2 recipe on one device (each micro-batch its own mask coin, as
    /// each official process).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub grad_accum: usize,
    /// Training resolution (images and label maps must be this size or larger / exactly).
    #[arg(long, default_value_t = 512)]
    pub resolution: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// `code`: L_loc on the hooked self-attention as the official code; `paper`: on the facial
    /// tokens' cross-attention; `off`.
    #[arg(long, default_value = "code", value_parser = ["code", "paper", "off"])]
    pub loc_variant: String,
    #[arg(long, default_value_t = 0.01)]
    pub loc_weight: f64,
    /// `all`: the attention processors train too (today's official code); `none`: only ProjPlus
    /// and the FacialEncoder (the recipe behind the released weights).
    #[arg(long, default_value = "all", value_parser = ["all", "none"])]
    pub train_adapter: String,
    #[arg(long, default_value_t = 1000)]
    pub save_every: u64,
    /// Continue from the newest checkpoint in `--out`.
    #[arg(long)]
    pub resume: bool,
    /// Draw sample portraits at step 0, every N steps and at the end (RUN/samples/step-N/);
    /// 0: never.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub sample_every: u64,
    /// The face of the samples (default: the dataset's first photo).
    #[arg(long, value_name = "FILE")]
    pub sample_face: Option<PathBuf>,
    #[arg(long, default_value = "a portrait photo of a person, highly detailed")]
    pub sample_prompt: String,
    /// Samples per draw (seeds 0, 1, …).
    #[arg(long, default_value_t = 2)]
    pub sample_seeds: usize,
    #[arg(long, default_value_t = 25)]
    pub sample_steps: usize,
    /// `bf16`: the official recipe (accelerate's bf16): ProjPlus and the frozen networks hold
    /// bf16 values and ProjPlus' AdamW runs in pure bf16 as torch's does (a step under half an
    /// ulp of a weight is lost, the second moment never decays); the FacialEncoder and the
    /// processors train in f32. `f32`: everything f32 (every ProjPlus step lands).
    #[arg(long, default_value = "bf16", value_parser = ["bf16", "f32"])]
    pub precision: String,
    /// Recompute memory-bound activations during the backward pass instead of keeping them
    /// (burn's balanced gradient checkpointing): less memory, more time, the same numbers.
    #[arg(long)]
    pub gradient_checkpointing: bool,
    /// Stop at a record that cannot be used (a missing file, a wrong size, no background…)
    /// instead of naming it and training on the next one.
    #[arg(long)]
    pub strict: bool,
}

/// The records of the training JSON, read from disk when asked.
struct Files {
    records: Vec<serde_json::Value>,
    images: PathBuf,
    parsing: PathBuf,
    faceid: PathBuf,
}

impl Files {
    fn field(&self, i: usize, key: &str) -> TrainResult<String> {
        self.records[i][key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| TrainError::Sample(format!("record {i} has no `{key}`")))
    }
}

impl Dataset for Files {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn get(&self, i: usize) -> TrainResult<Record> {
        let image_rel = self.field(i, "resize_IMG")?;
        let bad = |e: String| TrainError::Sample(format!("record {i} ({image_rel}): {e}"));
        let image = read_image(&self.images.join(&image_rel)).map_err(|e| bad(format!("{e:#}")))?;
        let label_path = self.parsing.join(self.field(i, "parsing_mask_IMG")?);
        let labels = image::open(&label_path)
            .map_err(|e| bad(format!("{}: {e}", label_path.display())))?
            .to_luma8()
            .into_raw();
        let face_id = ["id_embed_file_origin", "id_embed_file_resize"]
            .iter()
            .find_map(|k| self.records[i][k].as_str())
            .map(|rel| {
                let path = self.faceid.join(rel);
                let bytes =
                    std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
                let tensors = torch_file::read(&bytes)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
                tensors
                    .into_iter()
                    .next()
                    .map(|(_, t)| t.data)
                    .ok_or_else(|| bad(format!("{} holds no tensor", path.display())))
            })
            .transpose()?;
        Ok(Record {
            name: image_rel.clone(),
            image,
            labels,
            caption: self.field(i, "vqa_llva")?,
            facial_caption: self.field(i, "vqa_llva_more_face_detail")?,
            face_id,
        })
    }
}

/// `RUN/loss.html` from `metrics.csv`.
fn loss_plot(metrics: &Path) -> Result<String> {
    let text = std::fs::read_to_string(metrics)
        .with_context(|| format!("cannot read {}", metrics.display()))?;
    let title = metrics
        .parent()
        .and_then(|d| d.file_name())
        .map_or("training run".into(), |n| n.to_string_lossy().into_owned());
    Ok(plot::loss_page(&title, &plot::parse_metrics(&text)))
}

/// The sample drawer: the face given or the dataset's first photo.
fn sampler(
    args: &TrainArgs,
    files: &Files,
    source: &dyn WeightSource,
    device: &Device,
) -> Result<samples::Sampler> {
    let (face, face_name, identity) = match &args.sample_face {
        Some(path) => {
            let name = path
                .file_name()
                .map_or("face".into(), |n| n.to_string_lossy().into_owned());
            (read_image(path)?, name, None)
        }
        None => {
            let record = files.get(0)?;
            (record.image, record.name, record.face_id)
        }
    };
    let settings = samples::SampleSettings {
        face,
        face_name,
        prompt: args.sample_prompt.clone(),
        seeds: args.sample_seeds,
        steps: args.sample_steps,
        size: args.resolution,
        identity,
    };
    samples::Sampler::new(source, device, settings, &args.out)
}

/// Set by the first Ctrl-C (or SIGTERM): the run finishes its step, writes a checkpoint and
/// exits; a second Ctrl-C stops at once.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}

/// The model folder with `ConsistentID-v1.bin` read from `--init` when given.
struct WithInit {
    folder: DirSource,
    init: Option<PathBuf>,
}

impl WeightSource for WithInit {
    fn exists(&self, path: &str) -> bool {
        (path == CHECKPOINT && self.init.is_some()) || self.folder.exists(path)
    }

    fn read(&self, path: &str) -> consistentid_core::Result<Vec<u8>> {
        match &self.init {
            Some(init) if path == CHECKPOINT => {
                std::fs::read(init).map_err(|e| consistentid_core::Error::Read {
                    path: init.display().to_string(),
                    reason: e.to_string(),
                })
            }
            _ => self.folder.read(path),
        }
    }

    fn display_path(&self, path: &str) -> String {
        match &self.init {
            Some(init) if path == CHECKPOINT => init.display().to_string(),
            _ => self.folder.display_path(path),
        }
    }
}

fn network(source: &WithInit, device: &Device, adapter: TrainAdapter) -> Result<Network> {
    let pipe = ConsistentIdPipeline::load(source, DType::F32, device)?;
    Ok(Network {
        image_proj: pipe.modules.image_proj,
        facial_encoder: pipe.modules.facial_encoder,
        unet: pipe.sd.unet,
    }
    .with_trained(adapter))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

pub fn run(args: &TrainArgs, device: DeviceChoice) -> Result<()> {
    let text = std::fs::read_to_string(&args.dataset)
        .with_context(|| format!("cannot read {}", args.dataset.display()))?;
    let records: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON list of records", args.dataset.display()))?;
    if records.is_empty() {
        bail!("{} has no records", args.dataset.display());
    }
    if args.batch == 0 || args.resolution == 0 || args.steps == 0 || args.grad_accum == 0 {
        bail!("--batch, --grad-accum, --resolution and --steps must be at least 1");
    }
    let base = args
        .dataset
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let images = args.images.clone().unwrap_or(base);
    let files = Files {
        records,
        parsing: args.parsing.clone().unwrap_or_else(|| images.clone()),
        faceid: args.faceid.clone().unwrap_or_else(|| images.clone()),
        images,
    };
    let (plain, backend) = select(device)?;
    let ad = match args.gradient_checkpointing {
        true => plain.clone().autodiff().gradient_checkpointing(),
        false => plain.clone().autodiff(),
    };
    let source = WithInit {
        folder: DirSource::open(&args.model)?,
        init: args.init.clone(),
    };
    let adapter = if args.train_adapter == "none" {
        TrainAdapter::None
    } else {
        TrainAdapter::All
    };
    let precision = Precision::from_name(&args.precision).unwrap_or(Precision::Bf16);
    let frozen = ConsistentIdPipeline::load(&source, DType::F32, &plain)?;
    let mut encoders = FrozenEncoders {
        tokenizer: frozen.tokenizer,
        text_encoder: frozen.sd.text_encoder,
        image_encoder: frozen.image_encoder,
        vae: frozen.sd.vae,
        device: plain.clone(),
    };
    if precision == Precision::Bf16 {
        encoders = encoders.in_bf16();
    }
    let process = ForwardProcess::new(&frozen.sd.scheduler_config)?;
    let mut net = network(&source, &ad, adapter)?;
    if args.from_scratch {
        net = consistentid_train::init::from_scratch(net, args.seed)?;
        eprintln!("starting from fresh weights (seed {})", args.seed);
    }
    let mut optim = optimizer::for_precision(precision);
    let dir = args.out.join("checkpoints");
    let mut start = 0;
    if args.resume {
        let (step, path) = checkpoint::latest(&dir)
            .with_context(|| format!("--resume: no checkpoint in {}", dir.display()))?;
        let (s, n, o) = checkpoint::load(&path, net, optim)?;
        (start, net, optim) = (s, n, o);
        eprintln!("resuming after step {step} ({})", path.display());
    }
    if precision == Precision::Bf16 {
        // After a resume too: the frozen UNet came from the model folder again.
        net = precision::round_network(net);
    }
    let config = TrainConfig {
        batch: args.batch,
        size: args.resolution,
        seed: args.seed,
        loc_variant: LocVariant::from_name(&args.loc_variant).unwrap_or(LocVariant::Code),
        loc_weight: args.loc_weight,
        strict: args.strict,
        accumulate: args.grad_accum,
        precision,
        ..TrainConfig::default()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let metrics_path = args.out.join("metrics.csv");
    let fresh = !args.resume || !metrics_path.exists();
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;
    if fresh {
        writeln!(metrics, "step,total,noise_loss,loc_loss,masked,seconds")?;
    }
    let mut trainer = Trainer::new(config, net, optim, encoders, process, start);
    eprintln!(
        "training on {backend}: {} records, steps {}..{}, batch {} × {} micro-batches",
        files.len(),
        start + 1,
        args.steps,
        args.batch,
        args.grad_accum
    );
    let mut sampler = match args.sample_every {
        0 => None,
        _ => Some(sampler(args, &files, &source, &plain)?),
    };
    let mut draw = |step: u64, net: &Network| -> Result<()> {
        if let Some(s) = sampler.as_mut() {
            let written = s.draw(step, &export::release_bin(net))?;
            eprintln!(
                "samples of step {step}: {}",
                written
                    .first()
                    .and_then(|p| p.parent())
                    .map_or(String::new(), |d| d.display().to_string())
            );
        }
        Ok(())
    };
    if start == 0 {
        draw(0, &trainer.net)?;
    }
    let interrupted = interrupt_flag()?;
    let began = Instant::now();
    while trainer.step < args.steps {
        let t = Instant::now();
        let r = trainer.step(&files)?;
        let secs = t.elapsed().as_secs_f64();
        for why in &r.skipped {
            eprintln!("skipped {why}");
        }
        writeln!(
            metrics,
            "{},{},{},{},{},{secs:.3}",
            r.step, r.total, r.noise_loss, r.loc_loss, r.masked
        )?;
        let done = (r.step - start) as f64;
        let eta = began.elapsed().as_secs_f64() / done * (args.steps - r.step) as f64;
        eprintln!(
            "step {}/{}: loss {:.5} (noise {:.5}, L_loc {:.4}), {secs:.2} s/step, about {eta:.0} s left",
            r.step, args.steps, r.total, r.noise_loss, r.loc_loss
        );
        if args.sample_every > 0 && (r.step % args.sample_every == 0 || r.step == args.steps) {
            draw(r.step, &trainer.net)?;
        }
        let stop = interrupted.load(Ordering::SeqCst);
        if r.step % args.save_every == 0 || r.step == args.steps || stop {
            checkpoint::save(&dir, r.step, &trainer.net, &trainer.optim, 2)?;
            metrics.flush()?;
            write_atomic(
                &args.out.join("loss.html"),
                loss_plot(&metrics_path)?.as_bytes(),
            )?;
        }
        if stop {
            eprintln!(
                "interrupted: checkpoint of step {} written; `--resume` continues from it",
                r.step
            );
            std::process::exit(130);
        }
    }
    metrics.flush()?;
    write_new(
        &args.out.join("ConsistentID-v1.bin"),
        &export::release_bin(&trainer.net),
    )?;
    write_new(
        &args.out.join("ConsistentID-v1.safetensors"),
        &export::release_safetensors(&trainer.net)?,
    )?;
    eprintln!("wrote {}", args.out.join("ConsistentID-v1.bin").display());
    Ok(())
}
