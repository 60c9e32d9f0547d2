//! The bytes of stored files, one object per file under a key (`u/<id>` for uploads,
//! `o/<id>` for images): in a folder every process of the host can reach, or in an
//! S3-compatible bucket (`--object-store s3://…`, see [`super::objects`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::objects::{Unavailable, parse_url};

/// Where the objects are.
#[derive(Clone, Debug)]
pub enum Blobs {
    Folder(PathBuf),
    Bucket {
        store: Arc<dyn ObjectStore>,
        /// The URL without credentials, for messages.
        shown: String,
    },
}

impl Blobs {
    /// Objects under `root` (created).
    pub fn open(root: &Path) -> Result<Self> {
        for prefix in ["u", "o"] {
            std::fs::create_dir_all(root.join(prefix))
                .with_context(|| format!("cannot create the file folder {}", root.display()))?;
        }
        Ok(Self::Folder(root.to_path_buf()))
    }

    /// Objects in the bucket of an `s3://bucket/prefix?endpoint=…&region=…` URL (credentials
    /// from the environment or the URL's query).
    pub fn bucket(url: &str) -> Result<Self> {
        let (store, shown) = parse_url(url)?;
        Ok(Self::Bucket { store, shown })
    }

    /// Where they are, for messages (never with credentials).
    pub fn describe(&self) -> String {
        match self {
            Blobs::Folder(root) => root.display().to_string(),
            Blobs::Bucket { shown, .. } => shown.clone(),
        }
    }

    /// The key of a file: keys are our own ids, never a name from a request.
    pub fn key(kind: &str, id: &str) -> String {
        let prefix = if kind == "upload" { "u" } else { "o" };
        format!("{prefix}/{id}")
    }

    /// Writes an object whole (a reader never sees part of it), never over another.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Blobs::Folder(root) => {
                let path = root.join(key);
                let bytes = bytes.to_vec();
                tokio::task::spawn_blocking(move || crate::io::output::write_atomic(&path, &bytes))
                    .await?
                    .context("cannot store a file")
            }
            Blobs::Bucket { store, .. } => {
                let options = PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                };
                let payload = PutPayload::from(bytes.to_vec());
                match store.put_opts(&key.into(), payload, options).await {
                    // A retried request whose first try was stored: the same bytes (keys are
                    // fresh ids).
                    Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                    Err(e) => Err(Unavailable::wrap(e, "cannot store a file")),
                }
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        match self {
            Blobs::Folder(root) => tokio::fs::read(root.join(key))
                .await
                .context("cannot read a stored file"),
            Blobs::Bucket { store, .. } => {
                let read = async { store.get(&key.into()).await?.bytes().await };
                match read.await {
                    Ok(bytes) => Ok(bytes.to_vec()),
                    Err(e @ object_store::Error::NotFound { .. }) => {
                        Err(anyhow::Error::new(e).context("a stored file is missing"))
                    }
                    Err(e) => Err(Unavailable::wrap(e, "cannot read a stored file")),
                }
            }
        }
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Blobs::Folder(root) => match tokio::fs::remove_file(root.join(key)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(anyhow::Error::new(e).context("cannot delete a stored file"))
                }
                _ => Ok(()),
            },
            Blobs::Bucket { store, .. } => match store.delete(&key.into()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Unavailable::wrap(e, "cannot delete a stored file")),
            },
        }
    }

    /// Keys of the objects written more than `age` ago.
    pub async fn older_than(&self, age: std::time::Duration) -> Result<Vec<String>> {
        let now = std::time::SystemTime::now();
        let mut keys = Vec::new();
        for prefix in ["u", "o"] {
            match self {
                Blobs::Folder(root) => {
                    let mut dir = tokio::fs::read_dir(root.join(prefix)).await?;
                    while let Some(entry) = dir.next_entry().await? {
                        let modified = entry.metadata().await?.modified()?;
                        if now.duration_since(modified).unwrap_or_default() > age {
                            keys.push(format!("{prefix}/{}", entry.file_name().to_string_lossy()));
                        }
                    }
                }
                Blobs::Bucket { store, .. } => {
                    use futures_util::TryStreamExt as _;
                    let listed: Vec<object_store::ObjectMeta> = store
                        .list(Some(&prefix.into()))
                        .try_collect()
                        .await
                        .map_err(|e| Unavailable::wrap(e, "cannot list the stored files"))?;
                    let cutoff = now
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .saturating_sub(age)
                        .as_secs() as i64;
                    keys.extend(
                        listed
                            .into_iter()
                            .filter(|m| m.last_modified.timestamp() <= cutoff)
                            .map(|m| m.location.to_string()),
                    );
                }
            }
        }
        Ok(keys)
    }

    /// Bytes free on the folder's file system (a bucket does not say).
    pub fn free_bytes(&self) -> Option<u64> {
        let Blobs::Folder(root) = self else {
            return None;
        };
        let s = rustix::fs::statvfs(root).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
}
