//! `consistentid dataset build`: FGID-style training records from any folder of portraits,
//! as the official `data/FGID_*.py` scripts make them (the 512² resize, BiSeNet's label map and
//! colour overlay, the ArcFace identities of the resized and the original photo, two captions),
//! in one folder that is at once the images, label-map and identity root of the official
//! `train.py` and of `consistentid train`. Resumable: a photo whose record JSON exists is done.

mod captioner;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::{Args, Subcommand};
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::face::ChannelOrder;
use consistentid_core::face::analysis::FaceAnalysis;
use consistentid_core::pipeline::consistentid::PARSING;
use consistentid_core::weights::WeightSource;
use consistentid_core::weights::torch_write::{SaveDType, SaveTensor, save_tensor};
use consistentid_train::dataset::captions::{CaptionTable, Captions};
use consistentid_train::dataset::record::{FgidRecord, Names};
use consistentid_train::dataset::{Prepared, Preparer};

use self::captioner::Captioner;
use crate::device::{DeviceChoice, select};
use crate::io::folder::list_images;
use crate::io::image::decode;
use crate::io::output::write_atomic;
use crate::io::png::encode_pixels;
use crate::progress::clock;
use crate::source::DirSource;

/// The merged list `train.py --data_json_file` reads (`FGID_fuse_JSON.py`'s name).
pub const ALL_JSON: &str = "JSON_all.json";

/// The `dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Prepare a folder of portraits for training: resized photos, label maps, identities,
    /// captions and the official training JSON (`OUT/JSON_all.json`).
    Build(BuildArgs),
}

/// `dataset build` options.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The portraits (PNG, JPEG, WebP; sub-folders kept as in the official layout).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// The dataset folder (created; a re-run skips the photos already done).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The ConsistentID model folder holding `face_parsing.pth` and buffalo_l's
    /// `det_10g.onnx` / `w600k_r50.onnx` (`consistentid fetch` puts them there).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Captions a person already has: JSON (`{photo: {vqa_llva, vqa_llva_more_face_detail}}`
    /// or a list of records, e.g. an official JSON_all.json) or CSV (columns image,
    /// vqa_llva, vqa_llva_more_face_detail); photos are matched by path, name or stem.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["captioner", "caption_template"])]
    pub captions: Option<PathBuf>,
    /// An OpenAI-compatible vision chat endpoint (a local llama.cpp, Ollama or vLLM server
    /// with LLaVA 1.5), asked the official FGID prompts; a key is read from
    /// CONSISTENTID_CAPTIONER_KEY or OPENAI_API_KEY if set.
    #[arg(
        long,
        value_name = "URL",
        requires = "captioner_model",
        conflicts_with = "caption_template"
    )]
    pub captioner: Option<String>,
    /// The model name sent to `--captioner`.
    #[arg(long, value_name = "NAME")]
    pub captioner_model: Option<String>,
    /// Caption every photo with the inference template (the default when no captions are given;
    /// it exercises every code path but teaches the model little).
    #[arg(long)]
    pub caption_template: bool,
    /// Stop at the first photo that cannot be prepared instead of naming it and going on.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(command: DatasetCommand, device: DeviceChoice) -> Result<()> {
    match command {
        DatasetCommand::Build(args) => build(&args, device),
    }
}

/// Where captions come from.
enum CaptionSource {
    Table(CaptionTable, PathBuf),
    Captioner(Captioner),
    Template,
}

impl CaptionSource {
    fn open(args: &BuildArgs) -> Result<Self> {
        if let Some(path) = &args.captions {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let json = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let table = if json {
                CaptionTable::from_json(&text)
            } else {
                CaptionTable::from_csv(&text)
            }
            .with_context(|| format!("{}", path.display()))?;
            if table.is_empty() {
                bail!("{} holds no captions", path.display());
            }
            return Ok(Self::Table(table, path.clone()));
        }
        if let (Some(url), Some(model)) = (&args.captioner, &args.captioner_model) {
            return Ok(Self::Captioner(Captioner::new(url, model)));
        }
        Ok(Self::Template)
    }

    fn describe(&self) -> String {
        match self {
            Self::Table(t, p) => format!("{} captions from {}", t.len(), p.display()),
            Self::Captioner(c) => format!("the captioner at {}", c.url()),
            Self::Template => {
                "the inference template (give --captions or --captioner for real captions)".into()
            }
        }
    }

    fn captions(&self, origin: &str, bytes: &[u8]) -> Result<Captions> {
        match self {
            Self::Table(t, p) => t
                .get(origin)
                .cloned()
                .with_context(|| format!("no captions for it in {}", p.display())),
            Self::Captioner(c) => c.captions(bytes, mime(origin)),
            Self::Template => Ok(Captions::template()),
        }
    }
}

fn mime(name: &str) -> &'static str {
    match name
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        _ => "image/png",
    }
}

/// The networks, loaded once.
struct Networks {
    parser: BiSeNet,
    faces: FaceAnalysis,
    device: Device,
}

impl Networks {
    /// Both must be there before any photo is touched.
    fn load(model: &Path, device: &Device) -> Result<Self> {
        let source = DirSource::open(model)?;
        if !source.exists(PARSING) {
            bail!(
                "{} has no {PARSING} (BiSeNet): run `consistentid fetch` for the model folder",
                model.display()
            );
        }
        let parser = BiSeNet::load(
            &source.read(PARSING)?,
            &source.display_path(PARSING),
            device,
        )?;
        // `cv2.imread` hands insightface BGR, as insightface intends.
        let faces =
            FaceAnalysis::load(&source, ChannelOrder::Corrected, device)?.with_context(|| {
                format!(
                    "{} has no buffalo_l (det_10g.onnx, w600k_r50.onnx): run `consistentid fetch`",
                    model.display()
                )
            })?;
        Ok(Self {
            parser,
            faces,
            device: device.clone(),
        })
    }
}

/// An identity as `torch.save(torch.from_numpy(e).unsqueeze(0))`: `[1, 512]` f32.
fn identity_bin(embedding: &[f32]) -> Vec<u8> {
    save_tensor(&SaveTensor {
        name: String::new(),
        shape: vec![1, embedding.len()],
        data: embedding.to_vec(),
        dtype: SaveDType::F32,
    })
}

/// Writes one photo's files, the record JSON last.
fn write_photo(out: &Path, names: &Names, p: &Prepared, captions: &Captions) -> Result<FgidRecord> {
    let put = |rel: &str, bytes: Vec<u8>| -> Result<()> {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_atomic(&path, &bytes)
    };
    let (w, h) = (p.resized.width, p.resized.height);
    put(&names.resize, encode_pixels(&p.resized.data, w, h, false)?)?;
    put(&names.mask, encode_pixels(&p.labels, w, h, true)?)?;
    put(&names.color, encode_pixels(&p.overlay.data, w, h, false)?)?;
    if let Some(e) = &p.id_resize {
        put(&names.faceid_resize, identity_bin(e))?;
    }
    if let Some(e) = &p.id_origin {
        put(&names.faceid_origin, identity_bin(e))?;
    }
    let record = names.record(captions, p.id_resize.is_some(), p.id_origin.is_some());
    put(&names.json, serde_json::to_vec_pretty(&record)?)?;
    Ok(record)
}

/// A finished photo's record, if its JSON is there and whole.
fn finished(out: &Path, names: &Names) -> Option<FgidRecord> {
    let text = std::fs::read_to_string(out.join(&names.json)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a build did, for the summary.
#[derive(Default)]
struct Tally {
    written: usize,
    resumed: usize,
    skipped: Vec<(String, String)>,
    no_face_resize: usize,
    no_face_origin: usize,
    no_face_region: Vec<String>,
    no_background: Vec<String>,
}

fn build(args: &BuildArgs, device: DeviceChoice) -> Result<()> {
    let photos: Vec<String> = list_images(&args.images)?
        .into_iter()
        .filter(|rel| {
            // The dataset folder may sit inside the images folder: never read it back.
            !args.images.join(rel).starts_with(&args.out)
        })
        .collect();
    if photos.is_empty() {
        bail!(
            "{} holds no PNG, JPEG or WebP photos",
            args.images.display()
        );
    }
    let captions = CaptionSource::open(args)?;
    let (device, backend) = select(device)?;
    let nets = Networks::load(&args.model, &device)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    eprintln!(
        "preparing {} photos on {backend}; captions: {}",
        photos.len(),
        captions.describe()
    );
    let preparer = Preparer {
        parser: &nets.parser,
        faces: Some(&nets.faces),
        device: &nets.device,
    };
    let mut tally = Tally::default();
    let mut records: Vec<FgidRecord> = Vec::new();
    let mut seen_json = std::collections::HashSet::new();
    let began = Instant::now();
    for (i, origin) in photos.iter().enumerate() {
        let names = Names::of(origin);
        if !seen_json.insert(names.json.clone()) {
            tally.skipped.push((
                origin.clone(),
                "another photo with the same name (and another extension) comes first".into(),
            ));
            continue;
        }
        if let Some(record) = finished(&args.out, &names) {
            tally.resumed += 1;
            records.push(record);
            continue;
        }
        let outcome = (|| -> Result<FgidRecord> {
            let path = args.images.join(origin);
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let photo = decode(&bytes, origin)?;
            let prepared = preparer.prepare(&photo, origin)?;
            let caption = captions.captions(origin, &bytes)?;
            if !prepared.has_face_region() {
                tally.no_face_region.push(origin.clone());
            }
            if !prepared.has_background() {
                tally.no_background.push(origin.clone());
            }
            tally.no_face_resize += usize::from(prepared.id_resize.is_none());
            tally.no_face_origin += usize::from(prepared.id_origin.is_none());
            write_photo(&args.out, &names, &prepared, &caption)
        })();
        match outcome {
            Ok(record) => {
                tally.written += 1;
                records.push(record);
            }
            Err(e) if !args.strict => {
                eprintln!("\r  skipped {origin}: {e:#}\x1b[K");
                tally.skipped.push((origin.clone(), format!("{e:#}")));
            }
            Err(e) => return Err(e.context(format!("{origin} (--strict)"))),
        }
        let done = tally.written.max(1);
        let left = photos.len() - i - 1;
        let per = began.elapsed().as_secs_f64() / done as f64;
        eprintln!(
            "  {}/{} {origin} ({per:.1} s/photo, about {} left)",
            i + 1,
            photos.len(),
            clock(per * left as f64)
        );
    }
    write_atomic(
        &args.out.join(ALL_JSON),
        &serde_json::to_vec_pretty(&records)?,
    )?;
    summary(args, &tally, records.len());
    if records.is_empty() {
        bail!("no photo could be prepared");
    }
    Ok(())
}

fn summary(args: &BuildArgs, t: &Tally, total: usize) {
    eprintln!(
        "{total} records in {} ({} prepared now, {} from an earlier run, {} skipped)",
        args.out.join(ALL_JSON).display(),
        t.written,
        t.resumed,
        t.skipped.len()
    );
    for (photo, why) in &t.skipped {
        eprintln!("  skipped {photo}: {why}");
    }
    if t.no_face_resize + t.no_face_origin > 0 {
        eprintln!(
            "  no face found: {} resized, {} original photos (their identity is left out; training uses zeros, as the official scripts)",
            t.no_face_resize, t.no_face_origin
        );
    }
    if !t.no_face_region.is_empty() {
        eprintln!(
            "  BiSeNet found no facial skin in {} photos (they teach no facial region): {}",
            t.no_face_region.len(),
            t.no_face_region.join(", ")
        );
    }
    if !t.no_background.is_empty() {
        eprintln!(
            "  BiSeNet found no background in {} photos: training skips them (the official trainer stops on them): {}",
            t.no_background.len(),
            t.no_background.join(", ")
        );
    }
    eprintln!(
        "train with: consistentid train --dataset {} --model MODEL --out RUN",
        args.out.join(ALL_JSON).display()
    );
}
