//! The Hugging Face cache layout (`$HF_HOME/hub/models--org--name/{blobs,snapshots,refs}`),
//! shared with the Python libraries: `fetch` fills it, and `--model org/name` reads a
//! snapshot from it offline, as diffusers' `from_pretrained` does.

use std::path::{Path, PathBuf};

/// The hub cache: `$HF_HUB_CACHE`, `$HF_HOME/hub`, or `~/.cache/huggingface/hub`.
pub fn default_cache_dir() -> PathBuf {
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

/// `models--org--name` under the cache.
pub fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// Whether `rev` is a full commit hash (40 hex digits).
pub fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The snapshot folder of `repo` at `revision` (a commit hash, or a branch/tag recorded under
/// `refs/`), if the cache has it.
pub fn snapshot(cache: &Path, repo: &str, revision: &str) -> Option<PathBuf> {
    let dir = repo_dir(cache, repo);
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        std::fs::read_to_string(dir.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let snap = dir.join("snapshots").join(commit);
    snap.is_dir().then_some(snap)
}

/// Whether `text` looks like a Hub repo id (`org/name`), not a local path.
pub fn is_repo_id(text: &str) -> bool {
    let mut parts = text.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// `--model`: an existing path as given, else a Hub repo id found in the local cache (its
/// `main` snapshot). A repo id that is not cached is an error saying so.
pub fn resolve_model(model: &Path) -> anyhow::Result<PathBuf> {
    if model.exists() {
        return Ok(model.to_path_buf());
    }
    let text = model.to_string_lossy();
    if !is_repo_id(&text) {
        return Ok(model.to_path_buf());
    }
    let cache = default_cache_dir();
    snapshot(&cache, &text, "main").ok_or_else(|| {
        anyhow::anyhow!(
            "no model folder {text}, and the Hugging Face cache {} has no snapshot of the repo `{text}` (download it with `huggingface-cli download {text}` or use `consistentid fetch`)",
            cache.display()
        )
    })
}
