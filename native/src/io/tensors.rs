//! Stage outputs: named f32/i64 tensors as one safetensors file, written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use consistentid_core::tensor_io::{TensorFile, check_finite};

use anyhow::Result;
use consistentid_core::tensor_io::{NamedTensor, to_safetensors};

use crate::io::output::write_atomic;

pub fn write(path: &Path, tensors: &[NamedTensor], prompt: &str) -> Result<()> {
    let metadata = if prompt.is_empty() {
        vec![]
    } else {
        vec![("prompt", prompt.to_string())]
    };
    write_with_metadata(path, tensors, &metadata)
}

/// [`write`] with arbitrary string metadata.
pub fn write_with_metadata(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &[(&str, String)],
) -> Result<()> {
    let metadata = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<HashMap<_, _>>()
    });
    let bytes = to_safetensors(tensors, metadata)?;
    write_atomic(path, &bytes)?;
    let summary: Vec<String> = tensors
        .iter()
        .map(|t| format!("{} {:?}", t.name, t.shape))
        .collect();
    eprintln!("wrote {}: {}", path.display(), summary.join(", "));
    Ok(())
}

/// Reads `--id-embedding` (`id_embedding`, [1, 512] or [512], finite), warning when it is not
/// normalised as ArcFace's `normed_embedding` is.
pub fn read_id_embedding(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the ID embedding {}", path.display()))?;
    let shown = path.display().to_string();
    let file = TensorFile::parse_input(&shown, &bytes).map_err(|e| {
        anyhow::anyhow!("{shown} is not a safetensors file with `id_embedding`: {e}")
    })?;
    let (values, shape) = file.f32("id_embedding")?;
    if shape != [1, 512] && shape != [512] {
        bail!("`id_embedding` in {shown} has shape {shape:?}, expected [1, 512]");
    }
    check_finite("id_embedding", &values)?;
    let norm = values
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    if (norm - 1.0).abs() > 1e-2 {
        eprintln!(
            "warning: id_embedding has norm {norm:.3}; ArcFace's normed_embedding has norm 1"
        );
    }
    Ok(values)
}

/// A file's name without its folder (kept in metadata and messages instead of a local path).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().to_string())
}
