//! The bytes of stored files, one object per file under a key (`u/<id>` for uploads,
//! `o/<id>` for images), in a folder every process of the host can reach.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A folder of objects.
#[derive(Clone, Debug)]
pub struct Blobs {
    root: PathBuf,
}

impl Blobs {
    /// Objects under `root` (created).
    pub fn open(root: &Path) -> Result<Self> {
        for prefix in ["u", "o"] {
            std::fs::create_dir_all(root.join(prefix))
                .with_context(|| format!("cannot create the file folder {}", root.display()))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key of a file: keys are our own ids, never a name from a request.
    pub fn key(kind: &str, id: &str) -> String {
        let prefix = if kind == "upload" { "u" } else { "o" };
        format!("{prefix}/{id}")
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Writes an object whole (a reader never sees part of it).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(key);
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || crate::io::output::write_atomic(&path, &bytes))
            .await?
            .context("cannot store a file")
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        tokio::fs::read(self.path(key))
            .await
            .context("cannot read a stored file")
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context("cannot delete a stored file"))
            }
            _ => Ok(()),
        }
    }

    /// Bytes free on the folder's file system.
    pub fn free_bytes(&self) -> Option<u64> {
        let s = rustix::fs::statvfs(&self.root).ok()?;
        Some(s.f_bavail.saturating_mul(s.f_frsize))
    }
}
