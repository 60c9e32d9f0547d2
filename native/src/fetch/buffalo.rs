//! insightface's `buffalo_l` model pack (SCRFD `det_10g.onnx` + ArcFace `w600k_r50.onnx`, the
//! official pipeline's face detector and recogniser), fetched as insightface itself does: the
//! v0.7 release zip, checked against its sha256 and unpacked to `{root}/models/buffalo_l/`
//! (insightface's own location, so either tool reuses the other's download), then linked into
//! the model folder's `buffalo_l/`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::hub::{download_pinned, link_or_copy};

/// insightface's release of the pack, and its sha256.
pub const BUFFALO_URL: &str =
    "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip";
pub const BUFFALO_SHA256: &str = "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f";
/// The two files the pipeline runs.
const NEEDED: [&str; 2] = ["det_10g.onnx", "w600k_r50.onnx"];
const LICENCE: &str = "note: insightface's buffalo_l models are for non-commercial research use only (insightface's licence: https://github.com/deepinsight/insightface#license); pass --no-buffalo and --id-embedding to do without them";

/// Where buffalo_l comes from and goes.
#[derive(Debug, Args)]
pub struct BuffaloArgs {
    /// insightface's root (default `$INSIGHTFACE_HOME` or ~/.insightface): the pack is unpacked
    /// to `models/buffalo_l/` there, where insightface looks for it.
    #[arg(long, value_name = "DIR")]
    pub insightface_root: Option<PathBuf>,
    /// A mirror of buffalo_l.zip; its sha256 must be `--buffalo-sha256`.
    #[arg(long, default_value = BUFFALO_URL, hide = true)]
    pub buffalo_url: String,
    #[arg(long, default_value = BUFFALO_SHA256, hide = true)]
    pub buffalo_sha256: String,
}

fn unpacked(args: &BuffaloArgs) -> PathBuf {
    let root = args.insightface_root.clone().unwrap_or_else(|| {
        std::env::var_os("INSIGHTFACE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".insightface")
            })
    });
    root.join("models/buffalo_l")
}

fn complete(dir: &Path) -> bool {
    NEEDED.iter().all(|f| dir.join(f).is_file())
}

/// What `fetch --dry-run` prints for the pack.
pub fn dry_run(args: &BuffaloArgs, model_dir: &Path) {
    let dir = unpacked(args);
    let state = if complete(&dir) {
        "cached"
    } else {
        "to download"
    };
    println!(
        "{} -> {} via {} ({state}; non-commercial licence)",
        args.buffalo_url,
        model_dir.join("buffalo_l").display(),
        dir.display()
    );
}

/// Downloads and unpacks the pack unless insightface's folder has it, then links its files
/// into `{model_dir}/buffalo_l/`.
pub fn fetch(
    args: &BuffaloArgs,
    model_dir: &Path,
    offline: bool,
    agent: &ureq::Agent,
) -> Result<()> {
    let dir = unpacked(args);
    eprintln!("{LICENCE}");
    if !complete(&dir) {
        if offline {
            bail!(
                "buffalo_l is not in {} (--offline): run `consistentid fetch` with network access, or pass --no-buffalo",
                dir.display()
            );
        }
        let zip = download_zip(args, &dir, agent)?;
        unpack(&zip, &dir)?;
        if !complete(&dir) {
            bail!(
                "{} has no {} (not a buffalo_l pack)",
                args.buffalo_url,
                NEEDED.join(" / ")
            );
        }
    }
    let dest = model_dir.join("buffalo_l");
    std::fs::create_dir_all(&dest).with_context(|| format!("cannot create {}", dest.display()))?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "onnx") {
            let target = dest.join(path.file_name().context("a file name")?);
            let _ = std::fs::remove_file(&target);
            link_or_copy(&path, &target)?;
            println!(
                "buffalo_l/{} -> {}",
                target.file_name().unwrap_or_default().to_string_lossy(),
                target.display()
            );
        }
    }
    Ok(())
}

/// Downloads the zip next to the unpacked folder, checking its sha256.
fn download_zip(args: &BuffaloArgs, dir: &Path, agent: &ureq::Agent) -> Result<PathBuf> {
    let parent = dir.parent().context("buffalo_l's folder has a parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let zip = parent.join("buffalo_l.zip");
    let partial = zip.with_extension("incomplete");
    let mut out = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let got = download_pinned(
        agent,
        &args.buffalo_url,
        &args.buffalo_sha256,
        "buffalo_l.zip",
        &mut out,
    );
    if got.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    got?;
    std::fs::rename(&partial, &zip)?;
    Ok(zip)
}

/// Unpacks the `.onnx` files of the zip into `dir` (by file name only: no path from the
/// archive is ever used).
fn unpack(zip: &Path, dir: &Path) -> Result<()> {
    let file = std::fs::File::open(zip)?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("{} is not a zip", zip.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let full = entry.name().map(|n| n.to_string()).unwrap_or_default();
        let name = full.rsplit('/').next().unwrap_or("").to_string();
        if entry.is_dir() || !name.ends_with(".onnx") || name.starts_with('.') {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("corrupt {name} in {}", zip.display()))?;
        crate::io::output::write_atomic(&dir.join(&name), &bytes)?;
    }
    Ok(())
}
