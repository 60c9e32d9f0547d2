//! `eval score`: every image of a folder against its reference photo. An image names its
//! reference by a folder (`{ref}/…`) or a prefix (`{ref}_…`, `{ref}-…`); with `--prompts`, the
//! number after the reference is the prompt's position among that reference's rows. Images
//! made by `eval run` carry all of it in the folder's manifest.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use clap::Args;
use consistentid_core::clip::ClipModel;
use consistentid_core::face::facenet::InceptionResnetV1;
use consistentid_core::face::mtcnn::Mtcnn;
use consistentid_core::inception::FidInception;
use consistentid_core::vit::ViTModel;
use consistentid_eval::benchmark::{PromptRow, match_reference, parse_prompts};
use consistentid_eval::frechet::{Gaussian, frechet_distance};
use consistentid_eval::scorer::{Reference, RegionEncoder, Scorer};
use consistentid_eval::summary::{Fid, Row, summarise};

use super::files::{read_manifest, write_run};
use crate::device::{DeviceChoice, select};
use crate::io::folder::list_images;
use crate::io::image::read_image;
use crate::io::output::ensure_writable_dir;
use crate::progress::StepProgress;
use crate::source::DirSource;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The images to score (searched recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// The reference photos, one per identity.
    #[arg(long)]
    pub refs: PathBuf,
    /// A ConsistentID model folder: its buffalo_l, image_encoder/ and face_parsing.pth are
    /// the metrics' networks.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub networks: Networks,
    /// The prompt CSV (`Image_Name,Prompt[,Category]`), to give each image its prompt and
    /// category.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Where results.csv, rows.json, summary.json and report.html go.
    #[arg(long)]
    pub out: PathBuf,
    /// The run's name in reports (default: the --out folder's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// The optional networks of `eval run` and `eval score`.
#[derive(Debug, Args)]
pub struct Networks {
    /// A whole CLIP folder (transformers `CLIPModel`, e.g. openai/clip-vit-large-patch14) for
    /// CLIP-T and a CLIP-I comparable with published numbers.
    #[arg(long, value_name = "DIR")]
    pub clip: Option<PathBuf>,
    /// A ViT folder (transformers `ViTModel`, e.g. facebook/dino-vits16) for the DINO score.
    #[arg(long, value_name = "DIR")]
    pub dino: Option<PathBuf>,
    /// facenet-pytorch's networks for FaceSim (FaceNet) as FastComposer computes it: a folder with
    /// MTCNN's pnet.pt, rnet.pt, onet.pt and InceptionResnetV1's 20180402-114759-vggface2.pt.
    #[arg(long, value_name = "DIR")]
    pub facenet: Option<PathBuf>,
    /// pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth) for FID.
    #[arg(long, value_name = "FILE")]
    pub fid: Option<PathBuf>,
    /// The real photos FID compares against (default: the reference photos).
    #[arg(long, value_name = "DIR", requires = "fid")]
    pub fid_real: Option<PathBuf>,
    /// FGIS's region encoder: the model folder's CLIP ViT-H, the --clip model or DINO.
    #[arg(long, default_value = "clip-vit-h", value_parser = ["clip-vit-h", "clip", "dino"])]
    pub fgis_encoder: String,
}

/// The rows to score: from the manifest of `eval run`, else by matching names.
fn pending(images: &Path, refs: &[String], prompts: Option<&[PromptRow]>) -> Result<Vec<Row>> {
    if let Some(manifest) = read_manifest(images)? {
        return Ok(manifest
            .into_iter()
            .map(|m| Row {
                image: m.image,
                reference: m.reference,
                prompt: Some(m.prompt),
                category: m.category,
                seed: Some(m.seed),
                generate_seconds: Some(m.generate_seconds),
                ..Row::default()
            })
            .collect());
    }
    let files = list_images(images)?;
    if files.is_empty() {
        bail!("no images (png, jpg, webp) in {}", images.display());
    }
    Ok(files
        .into_iter()
        .map(|image| {
            let Some((reference, k)) = match_reference(&image, refs) else {
                return Row {
                    error: Some(
                        "no reference photo matches its name (use a folder or prefix named after one)"
                            .into(),
                    ),
                    category: "other".into(),
                    image,
                    ..Row::default()
                };
            };
            let prompt = prompts.and_then(|rows| {
                rows.iter()
                    .find(|r| r.reference == reference && Some(r.index) == k)
            });
            Row {
                reference: reference.to_string(),
                prompt: prompt.map(|p| p.prompt.clone()),
                category: prompt.map_or_else(|| "other".into(), |p| p.category.clone()),
                image,
                ..Row::default()
            }
        })
        .collect())
}

/// Where a run's images come from.
pub struct Sources<'a> {
    pub images: &'a Path,
    pub refs: &'a Path,
    /// The real photos of FID (default: `refs`).
    pub fid_real: Option<&'a Path>,
}

/// Scores `rows` (those without an error) and writes the run.
pub fn score_rows(
    scorer: &Scorer,
    sources: Sources<'_>,
    mut rows: Vec<Row>,
    out: &Path,
    name: &str,
    settings: BTreeMap<String, String>,
) -> Result<()> {
    let Sources {
        images,
        refs,
        fid_real,
    } = sources;
    let mut references: HashMap<String, Result<Reference, String>> = HashMap::new();
    let mut generated_features: Vec<Vec<f32>> = Vec::new();
    let total = rows.len();
    let mut progress = StepProgress::new("scoring".into());
    let started = Instant::now();
    for (done, row) in rows.iter_mut().enumerate() {
        if row.error.is_none() {
            let t = Instant::now();
            let reference = references.entry(row.reference.clone()).or_insert_with(|| {
                let path = refs.join(&row.reference);
                read_image(&path)
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|img| {
                        scorer
                            .reference(&img, &row.reference)
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|e| format!("reference {}: {e}", row.reference))
            });
            let scored = match reference {
                Ok(reference) => read_image(&images.join(&row.image))
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|img| {
                        if let Some(f) = scorer
                            .fid_features(std::slice::from_ref(&img))
                            .map_err(|e| e.to_string())?
                        {
                            generated_features.extend(f);
                        }
                        scorer
                            .score(reference, &img, &row.image, row.prompt.as_deref())
                            .map_err(|e| e.to_string())
                    }),
                Err(e) => Err(e.clone()),
            };
            match scored {
                Ok(s) => row.scores = Some(s),
                Err(e) => row.error = Some(e),
            }
            row.score_seconds = t.elapsed().as_secs_f64();
        }
        progress.step(done + 1, total);
    }
    let failed = rows.iter().filter(|r| r.error.is_some()).count();
    eprintln!(
        "scored {} of {total} images in {:.1}s{}",
        total - failed,
        started.elapsed().as_secs_f64(),
        if failed > 0 {
            format!(" ({failed} could not be scored: see results.csv)")
        } else {
            String::new()
        }
    );
    let networks = scorer.networks();
    let networks: Vec<(&str, &str)> = networks
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut summary = summarise(name, &rows, &networks, settings);
    if scorer.fid.is_some() {
        // A set FID cannot be computed for is named in the report, not fatal.
        match fid(scorer, generated_features, fid_real.unwrap_or(refs)) {
            Ok(f) => summary.fid = Some(f),
            Err(e) => {
                eprintln!("warning: {e:#}");
                summary
                    .settings
                    .insert("FID".into(), format!("not computed: {e:#}"));
            }
        }
    }
    write_run(out, images, &summary, &rows)?;
    for (key, stat) in &summary.overall {
        println!("{key}: {:.4} ± {:.4} (n={})", stat.mean, stat.ci95, stat.n);
    }
    if let Some(rate) = summary.detection_rate {
        println!("face detection rate: {:.1} %", 100.0 * rate);
    }
    println!("{}", out.join("report.html").display());
    Ok(())
}

/// FID of the scored images' features against the photos of `real` (every image under it).
fn fid(scorer: &Scorer, generated: Vec<Vec<f32>>, real: &Path) -> Result<Fid> {
    let mut real_features = Vec::new();
    for rel in list_images(real)? {
        let img = read_image(&real.join(&rel))?;
        real_features.extend(scorer.fid_features(&[img])?.unwrap_or_default());
    }
    if generated.len() < 2 || real_features.len() < 2 {
        bail!(
            "FID needs at least 2 images on each side ({} scored, {} in {})",
            generated.len(),
            real_features.len(),
            real.display()
        );
    }
    let fit = |f: &[Vec<f32>]| Gaussian::fit(f).map_err(|e| anyhow::anyhow!("FID: {e}"));
    let value = frechet_distance(&fit(&generated)?, &fit(&real_features)?)
        .map_err(|e| anyhow::anyhow!("FID: {e}"))?;
    eprintln!(
        "FID {value:.3} ({} images against {} of {}; unstable below about a thousand)",
        generated.len(),
        real_features.len(),
        real.display()
    );
    Ok(Fid {
        value,
        generated: generated.len(),
        real: real_features.len(),
        real_set: real.file_name().map_or_else(
            || real.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    })
}

/// The reference photos' file names.
pub fn reference_names(refs: &Path) -> Result<Vec<String>> {
    let names: Vec<String> = list_images(refs)?
        .into_iter()
        .filter(|n| !n.contains('/'))
        .collect();
    if names.is_empty() {
        bail!("no reference photos (png, jpg, webp) in {}", refs.display());
    }
    Ok(names)
}

fn folder_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// MTCNN and InceptionResnetV1 from a `--facenet` folder.
fn load_facenet(dir: &Path, device: &Device) -> Result<(Mtcnn, InceptionResnetV1)> {
    let read = |name: &str| -> Result<(Vec<u8>, String)> {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).with_context(|| {
            format!(
                "--facenet needs {} (facenet-pytorch 2.6.0's data/{name})",
                p.display()
            )
        })?;
        Ok((bytes, p.display().to_string()))
    };
    let [p, r, o] = [read("pnet.pt")?, read("rnet.pt")?, read("onet.pt")?];
    let mtcnn = Mtcnn::load([(&p.0, &p.1), (&r.0, &r.1), (&o.0, &o.1)], device)?;
    let weights = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "pt")
                && !["pnet.pt", "rnet.pt", "onet.pt"]
                    .iter()
                    .any(|n| p.file_name().is_some_and(|f| f == *n))
        })
        .min()
        .with_context(|| {
            format!(
                "--facenet: no InceptionResnetV1 weights (20180402-114759-vggface2.pt) in {}",
                dir.display()
            )
        })?;
    let bytes = std::fs::read(&weights)?;
    let net = InceptionResnetV1::load(&bytes, &weights.display().to_string(), device)?;
    Ok((mtcnn, net))
}

/// Loads the metrics' networks (and the `--clip` / `--dino` / `--facenet` ones when given).
pub fn load_scorer(model: &Path, extra: &Networks, device: DeviceChoice) -> Result<Scorer> {
    let (device, _) = select(device)?;
    let source = DirSource::open(model)?;
    let mut scorer = Scorer::load(&source, &device).map_err(|e| {
        anyhow::anyhow!(
            "{e} (`eval` needs a ConsistentID model folder with buffalo_l, image_encoder/ and face_parsing.pth; `consistentid fetch` assembles one)"
        )
    })?;
    if let Some(file) = &extra.fid {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let net = FidInception::load(&bytes, &file.display().to_string(), &device)?;
        scorer.fid = Some((folder_name(file), net));
    }
    if let Some(dir) = &extra.facenet {
        let (mtcnn, net) = load_facenet(dir, &device)?;
        scorer.facenet = Some((folder_name(dir), mtcnn, net));
    }
    if let Some(dir) = &extra.dino {
        let vit = ViTModel::load(&DirSource::open(dir)?, "", &device).map_err(|e| {
            anyhow::anyhow!(
                "{e} (--dino takes a transformers ViTModel folder: config.json, model.safetensors; e.g. facebook/dino-vits16)"
            )
        })?;
        scorer.dino = Some((folder_name(dir), vit));
    }
    if let Some(dir) = &extra.clip {
        let model = ClipModel::load(&DirSource::open(dir)?, "", &device).map_err(|e| {
            anyhow::anyhow!(
                "{e} (--clip takes a transformers CLIPModel folder: config.json with text_config and vision_config, model.safetensors, the tokenizer files; e.g. openai/clip-vit-large-patch14)"
            )
        })?;
        scorer.clip_model = Some((folder_name(dir), model));
    }
    scorer.region_encoder = RegionEncoder::from_name(&extra.fgis_encoder).unwrap_or_default();
    let needs = match scorer.region_encoder {
        RegionEncoder::Clip if scorer.clip_model.is_none() => Some("--clip"),
        RegionEncoder::Dino if scorer.dino.is_none() => Some("--dino"),
        _ => None,
    };
    if let Some(flag) = needs {
        bail!("--fgis-encoder {} needs {flag} DIR", extra.fgis_encoder);
    }
    Ok(scorer)
}

pub fn run_name(out: &Path, name: Option<&str>) -> String {
    name.map(str::to_string).unwrap_or_else(|| {
        out.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into())
    })
}

pub fn run(args: &ScoreArgs, device: DeviceChoice) -> Result<()> {
    let refs = reference_names(&args.refs)?;
    let prompts = match &args.prompts {
        Some(p) => Some(
            parse_prompts(
                &std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        ),
        None => None,
    };
    let rows = pending(&args.images, &refs, prompts.as_deref())?;
    ensure_writable_dir(&args.out)?;
    let scorer = load_scorer(&args.model, &args.networks, device)?;
    let mut settings = BTreeMap::new();
    settings.insert("images".into(), args.images.display().to_string());
    settings.insert("references".into(), args.refs.display().to_string());
    settings.insert("consistentid".into(), env!("CARGO_PKG_VERSION").into());
    let sources = Sources {
        images: &args.images,
        refs: &args.refs,
        fid_real: args.networks.fid_real.as_deref(),
    };
    score_rows(
        &scorer,
        sources,
        rows,
        &args.out,
        &run_name(&args.out, args.name.as_deref()),
        settings,
    )
}
