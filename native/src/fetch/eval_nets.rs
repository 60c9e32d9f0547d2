//! `fetch --eval DIR`: the networks `consistentid eval` adds to the model folder's, each where
//! its authors publish it, into one folder: `clip-vit-large-patch14/` and `dino-vits16/` from
//! the Hub (through the HF cache), `facenet/` (MTCNN from the facenet-pytorch 2.6.0 wheel, pinned
//! by its sha256; InceptionResnetV1's vggface2 weights from the facenet-pytorch release) and
//! pytorch-fid's Inception weights (checked against the sha256 prefix in their name, as torch hub
//! does). Files whose sha256 is not known in advance are pinned on first download:
//! `manifest.json` records every file's sha256 and a later run refuses a file that changed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use sha2::{Digest, Sha256};

use super::Entry;
use super::hub::{download_checked, download_pinned, link_or_copy};

pub const FACENET_WHEEL_URL: &str = "https://files.pythonhosted.org/packages/ed/2e/2d56386bc2f834cdc683743903852cf1428b4e5ee119f16cf808b589d3cd/facenet_pytorch-2.6.0-py3-none-any.whl";
pub const FACENET_WHEEL_SHA256: &str =
    "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca";
pub const VGGFACE2_URL: &str = "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt";
pub const FID_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// Hub files; `main` because no commit could be confirmed without Hub access (as the
/// ConsistentID checkpoint's revision).
pub const EVAL_PLAN: &[Entry] = &[
    hub(
        "openai/clip-vit-large-patch14",
        "config.json",
        "clip-vit-large-patch14/config.json",
    ),
    hub(
        "openai/clip-vit-large-patch14",
        "model.safetensors",
        "clip-vit-large-patch14/model.safetensors",
    ),
    hub(
        "openai/clip-vit-large-patch14",
        "vocab.json",
        "clip-vit-large-patch14/vocab.json",
    ),
    hub(
        "openai/clip-vit-large-patch14",
        "merges.txt",
        "clip-vit-large-patch14/merges.txt",
    ),
    hub(
        "openai/clip-vit-large-patch14",
        "tokenizer_config.json",
        "clip-vit-large-patch14/tokenizer_config.json",
    ),
    hub(
        "openai/clip-vit-large-patch14",
        "special_tokens_map.json",
        "clip-vit-large-patch14/special_tokens_map.json",
    ),
    hub(
        "facebook/dino-vits16",
        "config.json",
        "dino-vits16/config.json",
    ),
    hub(
        "facebook/dino-vits16",
        "model.safetensors",
        "dino-vits16/model.safetensors",
    ),
];

const fn hub(repo: &'static str, path: &'static str, dest: &'static str) -> Entry {
    Entry {
        repo,
        revision: "main",
        path,
        dest,
    }
}

const LICENCES: &str = "licences: CLIP ViT-L/14 MIT (OpenAI); DINO ViT-S/16 Apache-2.0 (Meta); facenet-pytorch's MTCNN and InceptionResnetV1 MIT (its weights were trained on VGGFace2, whose terms are for research); the FID Inception weights Apache-2.0 (TensorFlow models, ported by pytorch-fid)";
const MTCNN: [&str; 3] = ["pnet.pt", "rnet.pt", "onet.pt"];

/// `fetch --eval` options.
#[derive(Debug, Args)]
pub struct EvalFetchArgs {
    /// Also assemble the evaluation networks (`eval --clip/--dino/--facenet/--fid`) into DIR.
    #[arg(long, value_name = "DIR")]
    pub eval: Option<PathBuf>,
    /// Only the evaluation networks: leave the model folder alone.
    #[arg(long, requires = "eval")]
    pub eval_only: bool,
    #[arg(long, default_value = FACENET_WHEEL_URL, hide = true)]
    pub facenet_wheel_url: String,
    #[arg(long, default_value = FACENET_WHEEL_SHA256, hide = true)]
    pub facenet_wheel_sha256: String,
    #[arg(long, default_value = VGGFACE2_URL, hide = true)]
    pub vggface2_url: String,
    #[arg(long, default_value = FID_URL, hide = true)]
    pub fid_url: String,
}

fn file_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// `manifest.json`: relative path → sha256 of every file fetched.
struct Manifest {
    path: PathBuf,
    files: BTreeMap<String, String>,
}

impl Manifest {
    fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let files = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a manifest", path.display()))?,
            Err(_) => BTreeMap::new(),
        };
        Ok(Self { path, files })
    }

    /// Whether `rel` is there and unchanged since it was recorded (an error if it changed).
    fn verified(&self, dir: &Path, rel: &str) -> Result<bool> {
        let file = dir.join(rel);
        let (Some(want), true) = (self.files.get(rel), file.is_file()) else {
            return Ok(false);
        };
        let got = sha256_of(&file)?;
        if &got != want {
            bail!(
                "{} changed since it was fetched (sha256 {got}, recorded {want}): delete it to fetch it again",
                file.display()
            );
        }
        Ok(true)
    }

    fn record(&mut self, dir: &Path, rel: &str) -> Result<()> {
        self.files
            .insert(rel.to_string(), sha256_of(&dir.join(rel))?);
        crate::io::output::write_atomic(
            &self.path,
            serde_json::to_string_pretty(&self.files)?.as_bytes(),
        )
    }
}

/// What `fetch --dry-run` prints for the evaluation networks.
pub fn dry_run(args: &EvalFetchArgs, dir: &Path) {
    for e in EVAL_PLAN {
        println!(
            "{}/{} @ {} -> {}",
            e.repo,
            e.path,
            e.revision,
            dir.join(e.dest).display()
        );
    }
    println!(
        "{} (MTCNN: {}) -> {}",
        args.facenet_wheel_url,
        MTCNN.join(", "),
        dir.join("facenet").display()
    );
    println!("{} -> {}", args.vggface2_url, dir.join("facenet").display());
    println!("{} -> {}", args.fid_url, dir.display());
}

/// Downloads `url` into `dir/rel`; `check` sees the sha256 before the file is kept.
fn download_to(
    agent: &ureq::Agent,
    url: &str,
    dir: &Path,
    rel: &str,
    check: impl Fn(&str) -> Result<()>,
) -> Result<()> {
    let dest = dir.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let partial = dest.with_extension("incomplete");
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let got = download_checked(agent, url, rel, &mut out, check);
    if got.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    got?;
    std::fs::rename(&partial, &dest)?;
    Ok(())
}

/// The HF files (already downloaded into the cache by the caller's `hub` function) linked into
/// `dir`, then the files from their release URLs.
pub fn fetch(
    args: &EvalFetchArgs,
    dir: &Path,
    offline: bool,
    agent: &ureq::Agent,
    hub_file: &mut dyn FnMut(&Entry) -> Result<PathBuf>,
) -> Result<()> {
    eprintln!("{LICENCES}");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut manifest = Manifest::open(dir)?;
    for e in EVAL_PLAN {
        let file = hub_file(e)?;
        let dest = dir.join(e.dest);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&dest);
        link_or_copy(&file, &dest)?;
        manifest.record(dir, e.dest)?;
        println!("{}/{} -> {}", e.repo, e.path, dest.display());
    }
    let offline_error = |what: &str| -> Result<()> {
        bail!(
            "{what} is not in {} (--offline): run `consistentid fetch --eval` with network access",
            dir.display()
        )
    };
    // MTCNN, from the wheel (pinned by its sha256).
    let mut have = true;
    for n in MTCNN {
        have &= manifest.verified(dir, &format!("facenet/{n}"))?;
    }
    if !have {
        if offline {
            offline_error("MTCNN")?;
        }
        let mut wheel = Vec::new();
        download_pinned(
            agent,
            &args.facenet_wheel_url,
            &args.facenet_wheel_sha256,
            "facenet-pytorch wheel",
            &mut wheel,
        )?;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
            .context("the facenet-pytorch wheel is not a zip")?;
        std::fs::create_dir_all(dir.join("facenet"))?;
        for n in MTCNN {
            let mut bytes = Vec::new();
            zip.by_name(&format!("facenet_pytorch/data/{n}"))
                .with_context(|| format!("the facenet-pytorch wheel has no data/{n}"))?
                .read_to_end(&mut bytes)?;
            let rel = format!("facenet/{n}");
            crate::io::output::write_atomic(&dir.join(&rel), &bytes)?;
            manifest.record(dir, &rel)?;
        }
    }
    // InceptionResnetV1 (pinned on first download).
    let rel = format!("facenet/{}", file_name(&args.vggface2_url));
    if !manifest.verified(dir, &rel)? {
        if offline {
            offline_error(&rel)?;
        }
        download_to(agent, &args.vggface2_url, dir, &rel, |_| Ok(()))?;
        manifest.record(dir, &rel)?;
    }
    // The FID Inception: its name ends in the first 8 hex digits of its sha256.
    let rel = file_name(&args.fid_url).to_string();
    if !manifest.verified(dir, &rel)? {
        if offline {
            offline_error(&rel)?;
        }
        let prefix = rel
            .rsplit_once('-')
            .and_then(|(_, tail)| tail.split('.').next())
            .filter(|p| p.len() >= 8 && p.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_string);
        download_to(agent, &args.fid_url, dir, &rel, |sha| match &prefix {
            Some(p) if !sha.starts_with(p.as_str()) => {
                bail!("{rel}: sha256 {sha} does not start with {p} as its name says")
            }
            _ => Ok(()),
        })?;
        manifest.record(dir, &rel)?;
    }
    println!(
        "evaluation networks ready: consistentid eval score --clip {0}/clip-vit-large-patch14 --dino {0}/dino-vits16 --facenet {0}/facenet --fid {0}/{rel} …",
        dir.display()
    );
    Ok(())
}
