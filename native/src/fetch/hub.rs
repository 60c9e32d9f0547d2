//! Files from the Hugging Face Hub into the standard HF cache, at pinned revisions: the
//! resolve URL's headers give the commit, the file's etag (sha256 for LFS files) and size;
//! downloads are checked against both and land in `blobs/`, linked from `snapshots/{commit}/`.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::Entry;
use crate::hf_cache::{is_commit, repo_dir};

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim_matches('"').to_string())
}

/// Downloads one file into the cache; returns its snapshot path.
/// `head` must not follow redirects (the Hub's metadata is on the redirect itself); `get` does.
pub fn download(
    head: &ureq::Agent,
    get: &ureq::Agent,
    endpoint: &str,
    cache: &Path,
    entry: &Entry,
) -> Result<PathBuf> {
    let url = format!(
        "{endpoint}/{}/resolve/{}/{}",
        entry.repo, entry.revision, entry.path
    );
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
    if is_commit(entry.revision) && commit != entry.revision {
        bail!(
            "{url}: the Hub answered with commit {commit}, not the pinned {}",
            entry.revision
        );
    }
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
        let (done, digest) = copy_hashed(resp, &mut out, entry.path, size)?;
        if let Some(total) = size
            && done != total
        {
            let _ = std::fs::remove_file(&partial);
            bail!(
                "{}: got {done} bytes, expected {total} (truncated download; run fetch again)",
                entry.path
            );
        }
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
    if !is_commit(entry.revision) {
        std::fs::create_dir_all(dir.join("refs"))?;
        std::fs::write(dir.join("refs").join(entry.revision), &commit)?;
    }
    Ok(snapshot)
}

pub fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(std::fs::canonicalize(from)?, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy to {}", to.display()))?;
    Ok(())
}

/// Downloads `url` into `out`, failing on an HTTP error or when its sha256 is not `sha256`.
pub fn download_pinned(
    agent: &ureq::Agent,
    url: &str,
    sha256: &str,
    what: &str,
    out: &mut impl Write,
) -> Result<()> {
    download_checked(agent, url, what, out, |digest| {
        if digest != sha256 {
            bail!("{what}: sha256 {digest} does not match the pinned {sha256}");
        }
        Ok(())
    })
}

/// Downloads `url` into `out`, failing on an HTTP error or when `check` refuses its sha256.
pub fn download_checked(
    agent: &ureq::Agent,
    url: &str,
    what: &str,
    out: &mut impl Write,
    check: impl Fn(&str) -> Result<()>,
) -> Result<()> {
    let resp = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot download {url}"))?;
    if resp.status().as_u16() >= 400 {
        bail!("{url}: HTTP {}", resp.status().as_u16());
    }
    let size = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (_, digest) = copy_hashed(resp, out, what, size)?;
    check(&digest)
}

/// Streams a response body into `out`, with a progress bar on a terminal; returns the byte
/// count and the sha256.
pub fn copy_hashed(
    resp: ureq::http::Response<ureq::Body>,
    out: &mut impl Write,
    what: &str,
    size: Option<u64>,
) -> Result<(u64, String)> {
    let mut reader = resp.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done: u64 = 0;
    let terminal = std::io::stderr().is_terminal();
    loop {
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("download of {what} interrupted"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        done += n as u64;
        if terminal && let Some(total) = size {
            let filled = ((done * 30 / total.max(1)) as usize).min(30);
            eprint!(
                "\r  {what} [{}{}] {:.0}/{:.0} MB",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                done as f64 / 1e6,
                total as f64 / 1e6
            );
        }
    }
    if terminal {
        eprintln!();
    }
    out.flush()?;
    Ok((done, format!("{:x}", hasher.finalize())))
}
