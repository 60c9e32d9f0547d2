//! Reading model folders and applying checkpoint tensors to modules.
//!
//! The crate does no I/O itself: a [`WeightSource`] (a directory on native, fetched bytes in the
//! browser) hands over files by their path inside the model folder, and [`load_safetensors`]
//! maps one safetensors file onto a module, strictly: a missing tensor, a shape that does not
//! match the config, or a stray tensor under the module's prefix is an error.

pub mod convert;
pub mod keymap;
pub mod pickle;
pub mod single_file;
pub mod torch_file;
pub mod torch_write;

use burn::module::Module;
use burn::store::{KeyRemapper, ModuleSnapshot, SafetensorsStore};
use burn::tensor::DType;

use crate::{Error, Result};

/// Files of a model folder, addressed by their path relative to the folder root
/// (`"text_encoder/config.json"`). Shared between threads: components load side by side.
pub trait WeightSource: Sync {
    /// Whether the folder has this file.
    fn exists(&self, path: &str) -> bool;

    /// The whole file. A missing file is [`Error::MissingFile`].
    fn read(&self, path: &str) -> Result<Vec<u8>>;

    /// A safetensors store over the file. The default reads the file into memory; native
    /// sources override it to memory-map large files.
    fn safetensors(&self, path: &str) -> Result<SafetensorsStore> {
        Ok(SafetensorsStore::from_bytes(Some(self.read(path)?)))
    }

    /// How to name a file of this source in messages (a full path on disk, say).
    fn display_path(&self, path: &str) -> String {
        path.to_string()
    }

    /// The file as UTF-8 text.
    fn read_string(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read(path)?).map_err(|e| Error::Read {
            path: self.display_path(path),
            reason: format!("not UTF-8 text ({e})"),
        })
    }
}

/// Parses a JSON config file of the model folder.
pub fn read_json<T: serde::de::DeserializeOwned>(
    source: &dyn WeightSource,
    path: &str,
) -> Result<T> {
    let text = source.read_string(path)?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: source.display_path(path),
        reason: e.to_string(),
    })
}

/// Reads `{dir}/config.json` with `parse(path shown in errors, text)`.
pub fn read_config<C>(
    source: &dyn WeightSource,
    dir: &str,
    parse: impl FnOnce(&str, &str) -> Result<C>,
) -> Result<C> {
    let path = join(dir, "config.json");
    parse(&source.display_path(&path), &source.read_string(&path)?)
}

/// [`load_safetensors`] into a freshly built `module` with owned `(regex, replacement)` rules
/// (generated per config); the loaded module.
pub fn load_with_rules<M: Module + ModuleSnapshot>(
    mut module: M,
    source: &dyn WeightSource,
    path: &str,
    rules: &[(String, String)],
    ignore_unused: &[&str],
    dtype: DType,
) -> Result<M> {
    let remap: Vec<(&str, &str)> = rules
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let spec = LoadSpec {
        remap: &remap,
        ignore_unused,
        dtype,
    };
    load_safetensors(&mut module, source, path, &spec)?;
    Ok(module)
}

/// The weight file of a diffusers/transformers component folder: `{dir}/{stem}.safetensors`,
/// or the variant file `{dir}/{stem}.{variant}.safetensors` (diffusers' `variant="fp16"`).
///
/// With `variant` given only that file is accepted; without it the plain file is preferred and
/// the `fp16` variant is the fallback, so folders saved with either layout load.
pub fn find_weight_file(
    source: &dyn WeightSource,
    dir: &str,
    stem: &str,
    variant: Option<&str>,
) -> Result<String> {
    let plain = join(dir, &format!("{stem}.safetensors"));
    let candidates = match variant {
        Some(v) => vec![join(dir, &format!("{stem}.{v}.safetensors"))],
        None => vec![
            plain.clone(),
            join(dir, &format!("{stem}.fp16.safetensors")),
        ],
    };
    candidates
        .iter()
        .find(|c| source.exists(c))
        .cloned()
        .ok_or_else(|| Error::MissingFile {
            path: source.display_path(&candidates[0]),
        })
}

/// How a checkpoint's keys map onto a module's parameter paths.
pub struct LoadSpec<'a> {
    /// `(regex, replacement)` rules applied in order to every checkpoint key.
    pub remap: &'a [(&'a str, &'a str)],
    /// Checkpoint keys (after remapping) matching these regexes may be left unused
    /// (non-persistent buffers such as `position_ids`, heads we do not run).
    pub ignore_unused: &'a [&'a str],
    /// The float type the parameters are cast to, whatever the file stores (f32/f16/bf16).
    pub dtype: DType,
}

/// Loads the tensors of the safetensors file `path` into `module`, strictly.
///
/// Keys are the PyTorch names after `spec.remap`; linear weights are transposed and norm
/// weights renamed by burn's PyTorch adapter; every float tensor is cast to `spec.dtype`.
/// Builds a model from `{dir}/config.json` (parsed by `parse`, built by `build`) and loads
/// `{dir}/{stem}[.variant].safetensors` into it with `spec`: the shared shape of every
/// diffusers/transformers folder loader.
pub fn load_folder_model<M: Module + ModuleSnapshot, C>(
    source: &dyn WeightSource,
    dir: &str,
    stem: &str,
    variant: Option<&str>,
    parse: impl FnOnce(&str, &str) -> Result<C>,
    build: impl FnOnce(&C) -> M,
    spec: &LoadSpec<'_>,
) -> Result<M> {
    let config = read_config(source, dir, parse)?;
    let weights = find_weight_file(source, dir, stem, variant)?;
    let mut model = build(&config);
    load_safetensors(&mut model, source, &weights, spec)?;
    Ok(model)
}

pub fn load_safetensors<M: Module + ModuleSnapshot>(
    module: &mut M,
    source: &dyn WeightSource,
    path: &str,
    spec: &LoadSpec<'_>,
) -> Result<()> {
    load_safetensors_filtered(module, source, path, spec, None)
}

/// [`load_safetensors`] restricted to module paths matching the regex `only` (the rest of the
/// module keeps its weights and is not reported missing): adapters loaded onto a base model.
pub fn load_safetensors_filtered<M: Module + ModuleSnapshot>(
    module: &mut M,
    source: &dyn WeightSource,
    path: &str,
    spec: &LoadSpec<'_>,
    only: Option<&str>,
) -> Result<()> {
    let shown = source.display_path(path);
    let mut remapper = KeyRemapper::new();
    for (from, to) in spec.remap {
        remapper = remapper
            .add_pattern(*from, *to)
            .map_err(|e| Error::WeightFile {
                path: shown.clone(),
                reason: format!("bad key rule `{from}`: {e}"),
            })?;
    }
    let adapter = convert::TorchLayoutAdapter { dtype: spec.dtype };
    let mut store = source.safetensors(path)?;
    if let Some(pattern) = only {
        store = store.with_regex(pattern);
    }
    let mut store = store
        .remap(remapper)
        .with_from_adapter(adapter)
        // Enum modules (a conv-or-linear projection) have no variant name in checkpoints.
        .skip_enum_variants(true)
        // We build the error ourselves from the ApplyResult, in one line.
        .allow_partial(true)
        .validate(false);
    let result = module
        .load_from(&mut store)
        .map_err(|e| Error::WeightFile {
            path: shown.clone(),
            reason: one_line(&e.to_string()),
        })?;

    let ignore: Vec<regex::Regex> = spec
        .ignore_unused
        .iter()
        .map(|p| regex::Regex::new(p).expect("ignore patterns are literals of this crate"))
        .collect();
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|k| !ignore.iter().any(|r| r.is_match(k)))
        .collect();
    let mut problems = Vec::new();
    if let Some(err) = result.errors.first() {
        problems.push(format!("{err} ({} errors)", result.errors.len()));
    }
    // With a filter, only the filtered part of the module must be covered by the file.
    let only = only.map(|p| regex::Regex::new(p).expect("filters are literals of this crate"));
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(path, _)| path)
        .filter(|path| only.as_ref().is_none_or(|r| r.is_match(path)))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} tensors missing, e.g. `{}`",
            missing.len(),
            missing[0]
        ));
    }
    if !unused.is_empty() {
        problems.push(format!(
            "{} tensors not used by the config, e.g. `{}`",
            unused.len(),
            unused[0]
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::WeightMismatch {
            path: shown.clone(),
            reason: problems.join("; "),
        })
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `dir/name`, or `name` for the folder itself (`dir` empty).
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Files held in memory (fetched in the browser, or converted on the fly).
#[derive(Default)]
pub struct MemorySource {
    pub files: std::collections::HashMap<String, Vec<u8>>,
}

impl WeightSource for MemorySource {
    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| Error::MissingFile {
                path: path.to_string(),
            })
    }
}
