//! `consistentid fetch`: downloads the official files from the Hugging Face Hub into the
//! standard HF cache (`$HF_HOME/hub`, `models--org--name/{blobs,snapshots,refs}`, so an existing
//! cache is reused and other tools reuse ours) and assembles the one model folder the pipeline
//! reads. Sizes are checked against the Hub's headers and LFS files against their sha256.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use sha2::{Digest, Sha256};

/// `fetch` options.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The model folder to assemble.
    #[arg(long, value_name = "DIR", default_value = "consistentid-model")]
    pub model_dir: PathBuf,
    /// The Hugging Face cache (default `$HF_HUB_CACHE`, `$HF_HOME/hub`, or ~/.cache/huggingface/hub).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Hub address (default `$HF_ENDPOINT` or https://huggingface.co).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Use only what the cache holds; never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// List the files and where they go; download nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One file of the model folder: where it comes from and where it goes.
pub struct Entry {
    pub repo: &'static str,
    pub path: &'static str,
    pub dest: &'static str,
}

const RV6: &str = "SG161222/Realistic_Vision_V6.0_B1_noVAE";
const CLIP_H: &str = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K";
const CID: &str = "JackAILab/ConsistentID";

/// The official files (spec §2): the Realistic Vision V6.0 B1 noVAE diffusers folder (fp16
/// variant), the laion ViT-H/14 image encoder, the ConsistentID checkpoint and BiSeNet weights.
pub const PLAN: &[Entry] = &[
    Entry {
        repo: RV6,
        path: "model_index.json",
        dest: "model_index.json",
    },
    Entry {
        repo: RV6,
        path: "scheduler/scheduler_config.json",
        dest: "scheduler/scheduler_config.json",
    },
    Entry {
        repo: RV6,
        path: "tokenizer/merges.txt",
        dest: "tokenizer/merges.txt",
    },
    Entry {
        repo: RV6,
        path: "tokenizer/special_tokens_map.json",
        dest: "tokenizer/special_tokens_map.json",
    },
    Entry {
        repo: RV6,
        path: "tokenizer/tokenizer_config.json",
        dest: "tokenizer/tokenizer_config.json",
    },
    Entry {
        repo: RV6,
        path: "tokenizer/vocab.json",
        dest: "tokenizer/vocab.json",
    },
    Entry {
        repo: RV6,
        path: "text_encoder/config.json",
        dest: "text_encoder/config.json",
    },
    Entry {
        repo: RV6,
        path: "text_encoder/model.fp16.safetensors",
        dest: "text_encoder/model.fp16.safetensors",
    },
    Entry {
        repo: RV6,
        path: "unet/config.json",
        dest: "unet/config.json",
    },
    Entry {
        repo: RV6,
        path: "unet/diffusion_pytorch_model.fp16.safetensors",
        dest: "unet/diffusion_pytorch_model.fp16.safetensors",
    },
    Entry {
        repo: RV6,
        path: "vae/config.json",
        dest: "vae/config.json",
    },
    Entry {
        repo: RV6,
        path: "vae/diffusion_pytorch_model.fp16.safetensors",
        dest: "vae/diffusion_pytorch_model.fp16.safetensors",
    },
    Entry {
        repo: CLIP_H,
        path: "config.json",
        dest: "image_encoder/config.json",
    },
    Entry {
        repo: CLIP_H,
        path: "model.safetensors",
        dest: "image_encoder/model.safetensors",
    },
    Entry {
        repo: CID,
        path: "ConsistentID-v1.bin",
        dest: "ConsistentID-v1.bin",
    },
    Entry {
        repo: CID,
        path: "face_parsing.pth",
        dest: "face_parsing.pth",
    },
];

fn cache_dir(args: &FetchArgs) -> PathBuf {
    if let Some(d) = &args.cache_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("HF_HOME") {
        return PathBuf::from(d).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/huggingface/hub")
}

fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// The cached snapshot file of `entry`, if the cache has one for `main`.
fn cached(cache: &Path, entry: &Entry) -> Option<PathBuf> {
    let dir = repo_dir(cache, entry.repo);
    let commit = std::fs::read_to_string(dir.join("refs/main")).ok()?;
    let file = dir.join("snapshots").join(commit.trim()).join(entry.path);
    file.exists().then_some(file)
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_matches('"').to_string())
}

/// Downloads one file into the cache; returns its snapshot path.
/// `head` must not follow redirects (the Hub's metadata is on the redirect itself); `get` does.
fn download(
    head: &ureq::Agent,
    get: &ureq::Agent,
    endpoint: &str,
    cache: &Path,
    entry: &Entry,
) -> Result<PathBuf> {
    let url = format!("{endpoint}/{}/resolve/main/{}", entry.repo, entry.path);
    // The Hub answers the resolve URL with the commit, the file's etag (sha256 for LFS files)
    // and size, then redirects LFS files to their storage.
    let head = head
        .head(&url)
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let status = head.status().as_u16();
    if status == 401 || status == 404 {
        bail!("{url}: HTTP {status} (repository or file not found, or gated)");
    }
    if status >= 400 {
        bail!("{url}: HTTP {status}");
    }
    let commit = header(&head, "x-repo-commit").context(format!(
        "{url}: no X-Repo-Commit header (not a Hugging Face hub?)"
    ))?;
    let etag = header(&head, "x-linked-etag")
        .or_else(|| header(&head, "etag"))
        .context(format!("{url}: no ETag"))?;
    let size: Option<u64> = header(&head, "x-linked-size")
        .or_else(|| header(&head, "content-length"))
        .and_then(|s| s.parse().ok());
    let dir = repo_dir(cache, entry.repo);
    let blob = dir.join("blobs").join(&etag);
    if !blob.exists() {
        std::fs::create_dir_all(dir.join("blobs"))?;
        let target = header(&head, "location").map_or(url.clone(), |l| {
            if l.starts_with('/') {
                format!("{endpoint}{l}")
            } else {
                l
            }
        });
        let resp = get
            .get(&target)
            .call()
            .with_context(|| format!("cannot download {target}"))?;
        if resp.status().as_u16() >= 400 {
            bail!("{target}: HTTP {}", resp.status().as_u16());
        }
        let partial = blob.with_extension("incomplete");
        let mut out = std::fs::File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let mut reader = resp.into_body().into_reader();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut done: u64 = 0;
        let terminal = std::io::stderr().is_terminal();
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("download of {} interrupted", entry.path))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            hasher.update(&buf[..n]);
            done += n as u64;
            if terminal && let Some(total) = size {
                let filled = (done * 30 / total.max(1)) as usize;
                eprint!(
                    "\r  {} [{}{}] {:.0}/{:.0} MB",
                    entry.path,
                    "#".repeat(filled.min(30)),
                    " ".repeat(30 - filled.min(30)),
                    done as f64 / 1e6,
                    total as f64 / 1e6
                );
            }
        }
        if terminal {
            eprintln!();
        }
        out.flush()?;
        if let Some(total) = size
            && done != total
        {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "{}: got {done} bytes, expected {total} (truncated download; run fetch again)",
                entry.path
            );
        }
        let digest = format!("{:x}", hasher.finalize());
        if etag.len() == 64 && etag.chars().all(|c| c.is_ascii_hexdigit()) && digest != etag {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "{}: sha256 {digest} does not match the Hub's {etag}",
                entry.path
            );
        }
        std::fs::rename(&partial, &blob)?;
    }
    let snapshot = dir.join("snapshots").join(&commit).join(entry.path);
    if let Some(parent) = snapshot.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if !snapshot.exists() {
        link_or_copy(&blob, &snapshot)?;
    }
    std::fs::create_dir_all(dir.join("refs"))?;
    std::fs::write(dir.join("refs/main"), &commit)?;
    Ok(snapshot)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(std::fs::canonicalize(from)?, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy to {}", to.display()))?;
    Ok(())
}

/// Runs `fetch`.
pub fn run(args: &FetchArgs) -> Result<()> {
    let cache = cache_dir(args);
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
        .unwrap_or_else(|| "https://huggingface.co".into());
    let endpoint = endpoint.trim_end_matches('/').to_string();
    if args.dry_run {
        println!("cache: {}", cache.display());
        for e in PLAN {
            let state = if cached(&cache, e).is_some() {
                "cached"
            } else {
                "to download"
            };
            println!(
                "{}/{} -> {} ({state})",
                e.repo,
                e.path,
                args.model_dir.join(e.dest).display()
            );
        }
        println!(
            "not fetched: insightface buffalo_l (det_10g.onnx, w600k_r50.onnx; non-commercial licence): place them in {} or pass --id-embedding",
            args.model_dir.join("buffalo_l").display()
        );
        return Ok(());
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .build()
        .into();
    let download_agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    for e in PLAN {
        let file = match cached(&cache, e) {
            Some(f) => f,
            None if args.offline => bail!(
                "{}/{} is not in the cache {} (--offline): run `consistentid fetch` with network access",
                e.repo,
                e.path,
                cache.display()
            ),
            None => download(&agent, &download_agent, &endpoint, &cache, e)?,
        };
        let dest = args.model_dir.join(e.dest);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if e.dest == "model_index.json" {
            // List the image encoder as diffusers does for IP-Adapter pipelines.
            let text = std::fs::read_to_string(&file)?;
            let mut index: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("bad {}", file.display()))?;
            if let Some(map) = index.as_object_mut() {
                map.insert(
                    "image_encoder".into(),
                    serde_json::json!(["transformers", "CLIPVisionModelWithProjection"]),
                );
            }
            std::fs::write(&dest, serde_json::to_string_pretty(&index)?)?;
        } else {
            let _ = std::fs::remove_file(&dest);
            link_or_copy(&file, &dest)?;
        }
        println!("{} -> {}", e.path, dest.display());
    }
    println!("model folder ready: {}", args.model_dir.display());
    Ok(())
}
