//! Checkpoints of a run: the trained parameters (with their ids, which the optimizer state is
//! keyed by), the optimizer state (burn's burnpack bytes) and the step, so that a resumed run
//! continues exactly as the uninterrupted one. Each checkpoint is a folder `step-<N>` written
//! as `.step-<N>.partial` and renamed when complete (files and folder synced first): a kill or
//! a full disk mid-write leaves the previous checkpoint as the latest.
//!
//! burn materialises a loaded optimizer state on its default device (`BURN_DEVICE`, else the
//! first compiled backend: CUDA in a CUDA build even without a GPU), moving it to the
//! parameters' device at the next step; a process that trains elsewhere sets `BURN_DEVICE` to
//! its backend before loading (the workspace's `.cargo/config.toml` does for tests).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Bytes, Tensor, TensorData};
use consistentid_core::tensor_io::{NamedTensor, TensorFile, to_safetensors};

use crate::network::Network;
use crate::{Result, TrainError};

const PARAMS: &str = "trained.safetensors";
const IDS: &str = "ids.json";
const OPTIMIZER: &str = "optimizer.bpk";

fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Checkpoint(format!("{}: {e}", path.display()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| io(path, e))?;
    f.write_all(bytes).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

/// The folder of step `step` under `dir`.
pub fn folder(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("step-{step:08}"))
}

/// Writes step `step`'s checkpoint under `dir` and keeps the `keep` newest ones.
pub fn save(
    dir: &Path,
    step: u64,
    net: &Network,
    optim: &ModuleOptimizer,
    keep: usize,
) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let partial = dir.join(format!(".step-{step:08}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| io(&partial, e))?;
    }
    fs::create_dir(&partial).map_err(|e| io(&partial, e))?;
    let state = net.trained_state();
    let tensors: Vec<NamedTensor> = state
        .iter()
        .map(|(path, _, t)| NamedTensor::from_f32(path, t.shape.clone(), &t.data))
        .collect();
    write_synced(&partial.join(PARAMS), &to_safetensors(&tensors, None)?)?;
    let ids: HashMap<&str, u64> = state
        .iter()
        .map(|(path, id, _)| (path.as_str(), id.val()))
        .collect();
    let meta = serde_json::json!({ "step": step, "ids": ids });
    write_synced(&partial.join(IDS), meta.to_string().as_bytes())?;
    let bytes = optim
        .into_bytes()
        .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e:?}")))?;
    write_synced(&partial.join(OPTIMIZER), &bytes)?;
    let done = folder(dir, step);
    if done.exists() {
        fs::remove_dir_all(&done).map_err(|e| io(&done, e))?;
    }
    fs::rename(&partial, &done).map_err(|e| io(&done, e))?;
    if let Ok(d) = fs::File::open(dir) {
        // The rename is durable once the folder is synced (not every filesystem allows it).
        let _ = d.sync_all();
    }
    let all = steps(dir);
    for &old in all.iter().rev().skip(keep.max(1)) {
        let _ = fs::remove_dir_all(folder(dir, old));
    }
    Ok(done)
}

/// The complete checkpoints under `dir`, oldest first.
pub fn steps(dir: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// The newest complete checkpoint under `dir`.
pub fn latest(dir: &Path) -> Option<(u64, PathBuf)> {
    steps(dir).last().map(|&s| (s, folder(dir, s)))
}

/// Puts saved values and ids back into the network's trained parameters.
struct Restore<'a> {
    path: Vec<String>,
    file: &'a TensorFile<'a>,
    ids: &'a HashMap<String, u64>,
    missing: Vec<String>,
    restored: usize,
}

impl ModuleMapper for Restore<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let value = param.val();
        if !value.is_require_grad() {
            return param;
        }
        let (Some(&id), Ok((data, shape))) = (self.ids.get(&path), self.file.f32(&path)) else {
            self.missing.push(path);
            return param;
        };
        if shape != value.dims() {
            self.missing.push(format!("{path} (shape {shape:?})"));
            return param;
        }
        let device = value.device();
        let restored = Tensor::<D>::from_data(TensorData::new(data, shape), &device)
            .cast(value.dtype())
            .require_grad();
        self.restored += 1;
        Param::initialized(ParamId::from(id), restored)
    }
}

/// Loads the checkpoint at `path` into `net` (built as for the run, frozen parts loaded) and
/// `optim` (fresh); the step it was taken after.
pub fn load(
    path: &Path,
    net: Network,
    optim: ModuleOptimizer,
) -> Result<(u64, Network, ModuleOptimizer)> {
    let read = |name: &str| {
        let p = path.join(name);
        fs::read(&p).map_err(|e| io(&p, e))
    };
    let meta: serde_json::Value = serde_json::from_slice(&read(IDS)?)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.join(IDS).display())))?;
    let step = meta["step"]
        .as_u64()
        .ok_or_else(|| TrainError::Checkpoint(format!("{}: no step", path.join(IDS).display())))?;
    let ids: HashMap<String, u64> = serde_json::from_value(meta["ids"].clone())
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.join(IDS).display())))?;
    let bytes = read(PARAMS)?;
    let file = TensorFile::parse(&path.join(PARAMS).display().to_string(), &bytes)?;
    let mut restore = Restore {
        path: Vec::new(),
        file: &file,
        ids: &ids,
        missing: Vec::new(),
        restored: 0,
    };
    let net = net.map(&mut restore);
    let saved = file.names().len();
    if !restore.missing.is_empty() || restore.restored != saved || saved != ids.len() {
        return Err(TrainError::Checkpoint(format!(
            "{} does not fit this network: {} of its {saved} trained tensors match{}{}",
            path.display(),
            restore.restored,
            if restore.missing.is_empty() {
                ""
            } else {
                "; not in it: "
            },
            restore.missing.join(", ")
        )));
    }
    let optim = optim
        .from_bytes(Bytes::from_bytes_vec(read(OPTIMIZER)?))
        .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e:?}")))?;
    Ok((step, net, optim))
}
