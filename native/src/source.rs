//! A model folder on disk as a [`WeightSource`].

use std::path::{Path, PathBuf};

use burn::store::SafetensorsStore;
use consistentid_core::weights::WeightSource;
use consistentid_core::{Error, Result};

/// A model folder (`--model DIR`).
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// Opens a folder; a missing or non-directory path is an error.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_dir() {
            return Err(Error::Read {
                path: root.display().to_string(),
                reason: "no such model folder".into(),
            });
        }
        Ok(Self { root })
    }

    /// The folder on disk.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }
}

impl WeightSource for DirSource {
    fn display_path(&self, path: &str) -> String {
        self.full(path).display().to_string()
    }

    fn exists(&self, path: &str) -> bool {
        self.full(path).is_file()
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        if !self.exists(path) {
            return Err(Error::MissingFile {
                path: self.display_path(path),
            });
        }
        std::fs::read(self.full(path)).map_err(|e| Error::Read {
            path: self.display_path(path),
            reason: e.to_string(),
        })
    }

    /// Memory-maps the file instead of reading it whole.
    fn safetensors(&self, path: &str) -> Result<SafetensorsStore> {
        if !self.exists(path) {
            return Err(Error::MissingFile {
                path: self.display_path(path),
            });
        }
        Ok(SafetensorsStore::from_file(self.full(path)))
    }
}
