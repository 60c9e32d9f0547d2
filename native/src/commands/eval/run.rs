//! `eval run`: the benchmark generated with the engine, every prompt row × `--seeds` images
//! from consecutive seeds, each PNG with its parameters, into `RUN/images/{ref}/{k}-{seed}.png`
//! and the manifest; a second run skips the rows already made. Then the images are scored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use consistentid_core::face::ChannelOrder;
use consistentid_core::pipeline::{
    FaceJob, GeneratedImage, GenerationRequest, IdentitySource, Sink,
};
use consistentid_eval::benchmark::{parse_prompts, stem};
use consistentid_eval::summary::Row;

use super::files::{ManifestEntry, manifest_path, read_manifest, write_json};
use super::score::{Networks, Sources, load_scorer, reference_names, run_name, score_rows};
use crate::device::{DeviceChoice, DtypeChoice, select};
use crate::io::image::read_image;
use crate::io::output::{ensure_writable_dir, write_atomic};
use crate::io::png::encode_rgb;
use crate::models::load_engine;
use crate::progress::{StepProgress, clock};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The ConsistentID model folder (generation and the metrics' networks).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub networks: Networks,
    /// The reference photos named in the prompt file.
    #[arg(long)]
    pub refs: PathBuf,
    /// The prompt CSV: the official `EvaluationIMGs_stars_prompts.csv` format
    /// (`Image_Name,Prompt[,Category]`).
    #[arg(long)]
    pub prompts: PathBuf,
    /// Images per prompt (consecutive seeds from --seed).
    #[arg(long, default_value_t = 4)]
    pub seeds: usize,
    /// The first seed (infer.py's 2024).
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    #[arg(long, default_value_t = 30)]
    pub merge_step: usize,
    #[arg(long, default_value_t = 5.0)]
    pub guidance: f64,
    #[arg(long, default_value_t = 512)]
    pub width: usize,
    #[arg(long, default_value_t = 768)]
    pub height: usize,
    /// A style preset (default: infer.py's wrapping).
    #[arg(long)]
    pub style: Option<String>,
    #[arg(long)]
    pub negative_prompt: Option<String>,
    /// Only the first N prompt rows (a quick look before the whole benchmark).
    #[arg(long)]
    pub limit: Option<usize>,
    /// The run folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The run's name in reports (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// An ablation study that needs no training: one run per variant in OUT/{variant}, then
    /// OUT/compare.html. `merge-steps`: the identity from step 0, 10, 20, 30, 40, 50;
    /// `regions`: 0 to 5 facial regions; `id-tokens`: with and without the identity tokens;
    /// `facial-caption`: with and without the facial caption (no facial token to fuse).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
}

/// The ablation presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    MergeSteps,
    Regions,
    IdTokens,
    FacialCaption,
}

/// A preset's variants: (name, request).
fn variants(preset: Preset, base: &GenerationRequest) -> Vec<(String, GenerationRequest)> {
    match preset {
        Preset::MergeSteps => [0, 10, 20, 30, 40, 50]
            .into_iter()
            .filter(|&m| m < base.num_inference_steps.max(1) || m == 0)
            .map(|m| {
                (
                    format!("merge-{m}"),
                    GenerationRequest {
                        start_merge_step: Some(m),
                        ..base.clone()
                    },
                )
            })
            .collect(),
        Preset::Regions => (0..=5)
            .map(|n| {
                let mut r = base.clone();
                r.ablation.max_regions = Some(n);
                (format!("regions-{n}"), r)
            })
            .collect(),
        Preset::IdTokens => [false, true]
            .into_iter()
            .map(|off| {
                let mut r = base.clone();
                r.ablation.no_id_tokens = off;
                let name = if off { "no-id-tokens" } else { "id-tokens" };
                (name.to_string(), r)
            })
            .collect(),
        Preset::FacialCaption => [false, true]
            .into_iter()
            .map(|off| {
                let mut r = base.clone();
                r.ablation.no_facial_caption = off;
                let name = if off {
                    "no-facial-caption"
                } else {
                    "facial-caption"
                };
                (name.to_string(), r)
            })
            .collect(),
    }
}

/// Writes each image of a row as it comes.
struct RowSink<'a> {
    dir: &'a Path,
    folder: String,
    index: usize,
    written: Vec<(String, u64)>,
    progress: StepProgress,
}

impl Sink for RowSink<'_> {
    fn step(&mut self, _image: usize, step: usize, total: usize) {
        self.progress.step(step, total);
    }

    fn image(&mut self, image: &GeneratedImage) -> consistentid_core::Result<()> {
        let rel = format!("{}/{:03}-{}.png", self.folder, self.index, image.seed);
        let png = encode_rgb(
            &image.image.data,
            image.image.width as u32,
            image.image.height as u32,
            &image.parameters,
        )
        .and_then(|png| write_atomic(&self.dir.join(&rel), &png))
        .map_err(|e| consistentid_core::Error::InvalidRequest(format!("{e:#}")));
        png?;
        self.written.push((rel, image.seed));
        Ok(())
    }
}

pub fn run(args: &RunArgs, device: DeviceChoice, dtype: DtypeChoice) -> Result<()> {
    let request = GenerationRequest {
        negative_prompt: args.negative_prompt.clone(),
        style: args.style.clone(),
        num_inference_steps: args.steps,
        guidance_scale: args.guidance,
        start_merge_step: Some(args.merge_step),
        seed: Some(args.seed),
        width: args.width,
        height: args.height,
        num_outputs: args.seeds,
        ..GenerationRequest::consistentid("x")
    };
    request
        .clone()
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(preset) = args.preset else {
        let name = run_name(&args.out, args.name.as_deref());
        return run_one(args, &request, &args.out, &name, device, dtype);
    };
    let mut runs = Vec::new();
    for (name, variant) in variants(preset, &request) {
        eprintln!("== {name}");
        let out = args.out.join(&name);
        run_one(args, &variant, &out, &name, device, dtype)?;
        runs.push(out);
    }
    super::compare::compare(&runs, &args.out.join("compare.html"))
}

/// One run: generate what is missing into `out`, then score it.
fn run_one(
    args: &RunArgs,
    request: &GenerationRequest,
    out: &Path,
    name: &str,
    device: DeviceChoice,
    dtype: DtypeChoice,
) -> Result<()> {
    let text = std::fs::read_to_string(&args.prompts)
        .with_context(|| format!("cannot read {}", args.prompts.display()))?;
    let mut rows =
        parse_prompts(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.prompts.display()))?;
    if let Some(n) = args.limit {
        rows.truncate(n);
    }
    let refs = reference_names(&args.refs)?;
    let images = out.join("images");
    ensure_writable_dir(&images)?;
    let mut manifest = read_manifest(&images)?.unwrap_or_default();
    let mut failed: Vec<Row> = Vec::new();
    let todo: Vec<_> = rows
        .iter()
        .filter(|r| {
            let prefix = format!("{}/{:03}-", stem(&r.reference), r.index);
            manifest
                .iter()
                .filter(|m| m.image.starts_with(&prefix))
                .count()
                < args.seeds
        })
        .collect();
    eprintln!(
        "{} prompt rows × {} seeds; {} rows to generate ({} done before)",
        rows.len(),
        args.seeds,
        todo.len(),
        rows.len() - todo.len()
    );
    if !todo.is_empty() {
        let (device, backend) = select(device)?;
        let engine = load_engine(
            &args.model,
            ChannelOrder::Official,
            dtype.resolve(backend),
            &device,
        )?;
        let all_started = Instant::now();
        for (n, row) in todo.iter().enumerate() {
            // The rows so far give the pace of the rest.
            let eta = if n > 0 {
                let per_row = all_started.elapsed().as_secs_f64() / n as f64;
                format!(" · {} left", clock(per_row * (todo.len() - n) as f64))
            } else {
                String::new()
            };
            eprintln!(
                "[{}/{}] {}: {}{eta}",
                n + 1,
                todo.len(),
                row.reference,
                row.prompt
            );
            let folder = stem(&row.reference).to_string();
            let started = Instant::now();
            let result = if !refs.contains(&row.reference) {
                Err(format!(
                    "no reference photo {} in {}",
                    row.reference,
                    args.refs.display()
                ))
            } else {
                let face =
                    read_image(&args.refs.join(&row.reference)).map_err(|e| format!("{e:#}"));
                let folder_made = std::fs::create_dir_all(images.join(&folder))
                    .map_err(|e| format!("cannot create {}: {e}", images.join(&folder).display()));
                folder_made.and(face).and_then(|face| {
                    let job = FaceJob {
                        request: GenerationRequest {
                            prompt: row.prompt.clone(),
                            ..request.clone()
                        },
                        face,
                        face_name: row.reference.clone(),
                        identity: IdentitySource::Detect {
                            choice: Default::default(),
                            allow_no_face: false,
                        },
                        face_parsing: None,
                        photo: None,
                    };
                    let mut sink = RowSink {
                        dir: &images,
                        folder: folder.clone(),
                        index: row.index,
                        written: Vec::new(),
                        progress: StepProgress::new(format!("{} images", args.seeds)),
                    };
                    engine.run(&job, &mut sink).map_err(|e| e.to_string())?;
                    Ok(sink.written)
                })
            };
            match result {
                Ok(written) => {
                    let seconds = started.elapsed().as_secs_f64() / written.len().max(1) as f64;
                    manifest.retain(|m| !written.iter().any(|(w, _)| *w == m.image));
                    manifest.extend(written.into_iter().map(|(image, seed)| ManifestEntry {
                        image,
                        reference: row.reference.clone(),
                        prompt: row.prompt.clone(),
                        category: row.category.clone(),
                        seed,
                        generate_seconds: seconds,
                    }));
                    write_json(&manifest_path(&images), &manifest)?;
                }
                Err(e) => {
                    eprintln!("  skipped: {e}");
                    failed.push(Row {
                        image: format!("{folder}/{:03}", row.index),
                        reference: row.reference.clone(),
                        prompt: Some(row.prompt.clone()),
                        category: row.category.clone(),
                        error: Some(e),
                        ..Row::default()
                    });
                }
            }
        }
    }
    // Score what the manifest lists (this run's rows), plus the rows that could not be made.
    let wanted: Vec<String> = rows
        .iter()
        .map(|r| format!("{}/{:03}-", stem(&r.reference), r.index))
        .collect();
    let mut scored: Vec<Row> = manifest
        .iter()
        .filter(|m| wanted.iter().any(|w| m.image.starts_with(w)))
        .map(|m| Row {
            image: m.image.clone(),
            reference: m.reference.clone(),
            prompt: Some(m.prompt.clone()),
            category: m.category.clone(),
            seed: Some(m.seed),
            generate_seconds: Some(m.generate_seconds),
            ..Row::default()
        })
        .collect();
    scored.extend(failed);
    let scorer = load_scorer(&args.model, &args.networks, device)?;
    let mut settings = BTreeMap::new();
    for (k, v) in [
        ("prompts", args.prompts.display().to_string()),
        ("references", args.refs.display().to_string()),
        ("seeds per prompt", args.seeds.to_string()),
        ("first seed", args.seed.to_string()),
        ("steps", args.steps.to_string()),
        (
            "merge step",
            request.start_merge_step.unwrap_or_default().to_string(),
        ),
        (
            "ablation",
            request.ablation.label().unwrap_or_else(|| "none".into()),
        ),
        ("guidance", args.guidance.to_string()),
        ("size", format!("{}x{}", args.width, args.height)),
        (
            "style",
            args.style
                .clone()
                .unwrap_or_else(|| "infer.py's wrapping".into()),
        ),
        ("sampler", "Euler".into()),
        ("consistentid", env!("CARGO_PKG_VERSION").into()),
    ] {
        settings.insert(k.to_string(), v);
    }
    let sources = Sources {
        images: &images,
        refs: &args.refs,
        fid_real: args.networks.fid_real.as_deref(),
    };
    score_rows(&scorer, sources, scored, out, name, settings)
}
