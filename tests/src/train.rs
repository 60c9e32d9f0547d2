//! The training fixtures (tests/fixtures/train_step, from tests/scripts/gen_train_step.py): the
//! tiny replica's network as the official trainer starts it, and a step's batch.

use std::collections::HashMap;

use burn::module::{ModuleMapper, Param};
use burn::tensor::{DType, Device, Tensor};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_core::weights::MemorySource;
use consistentid_native::source::DirSource;
use consistentid_train::localization::FacialTargets;
use consistentid_train::network::{HostTensor, Network, TrainAdapter};
use consistentid_train::objective::ForegroundMasks;
use consistentid_train::step::StepInputs;

use crate::fixture;

/// Zeroes the LoRA `up` weights: the official initialisation.
struct ZeroUp(Vec<String>);

impl ModuleMapper for ZeroUp {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.0.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.0.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.0.join(".").contains("_lora.up.") {
            param.map(|t| t.zeros_like())
        } else {
            param
        }
    }
}

pub fn network(device: &Device, zero_up: bool, adapter: TrainAdapter) -> Network {
    let dir = fixture("train_step");
    let source = DirSource::open(&dir).unwrap();
    let mut unet = UNet2DConditionModel::load(&source, "unet", None, DType::F32, device).unwrap();
    let bytes = std::fs::read(dir.join("ConsistentID-init.bin")).unwrap();
    let modules = ConsistentIdModules::load(&bytes, "ConsistentID-init.bin", device).unwrap();
    let adapters = MemorySource {
        files: [(
            "adapter_modules.safetensors".to_string(),
            modules.adapter_safetensors().unwrap(),
        )]
        .into(),
    };
    unet.load_ip_lora_adapters(
        &adapters,
        "adapter_modules.safetensors",
        4,
        1.0,
        DType::F32,
        device,
    )
    .unwrap();
    let mut net = Network {
        image_proj: modules.image_proj,
        facial_encoder: modules.facial_encoder,
        unet,
    };
    if zero_up {
        net = burn::module::Module::map(net, &mut ZeroUp(Vec::new()));
    }
    net.with_trained(adapter)
}

/// Step `s`'s batch from the case file.
pub fn inputs(file: &TensorFile, s: usize, masked: bool, device: &Device) -> StepInputs {
    let t = |n: &str| format!("{s}.{n}");
    let f32s = |n: &str| file.f32(&t(n)).unwrap();
    let flags =
        |n: &str| -> Vec<bool> { file.i64(&t(n)).unwrap().0.iter().map(|&v| v != 0).collect() };
    let (masks, shape) = f32s("facial_masks");
    let (fg, fg_shape) = f32s("foreground");
    StepInputs {
        latents: file.tensor::<4>(&t("latents"), device).unwrap(),
        noise: file.tensor::<4>(&t("noise"), device).unwrap(),
        timesteps: file
            .i64(&t("timesteps"))
            .unwrap()
            .0
            .iter()
            .map(|&v| v as usize)
            .collect(),
        prompt_embeds: file.tensor::<3>(&t("prompt_embeds"), device).unwrap(),
        image_embeds: file.tensor::<3>(&t("image_embeds"), device).unwrap(),
        region_embeds: file.tensor::<3>(&t("region_embeds"), device).unwrap(),
        face_id: file.tensor::<2>(&t("face_id"), device).unwrap(),
        facial_token_mask: flags("facial_token_mask"),
        facial: FacialTargets {
            masks,
            batch: shape[0],
            slots: shape[1],
            height: shape[2],
            width: shape[3],
            token_index: file.i64(&t("facial_token_idx")).unwrap().0,
            valid: flags("facial_token_idx_mask"),
        },
        foreground: masked.then(|| ForegroundMasks {
            masks: fg,
            batch: fg_shape[0],
            height: fg_shape[1],
            width: fg_shape[2],
        }),
    }
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// `max |a − b|` ≤ `tol · max |b| + abs` (and the same length).
pub fn assert_tensor_abs(what: &str, actual: &[f32], expected: &[f32], tol: f64, abs: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    let scale = expected
        .iter()
        .fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let err = actual
        .iter()
        .zip(expected)
        .fold(0f64, |m, (&a, &b)| m.max(f64::from(a - b).abs()));
    assert!(
        err <= tol * scale + abs,
        "{what}: max error {err:e} over max magnitude {scale:e} (allowed {tol:e} relative + {abs:e})"
    );
}

/// `max |a − b|` ≤ `tol · max |b|`.
pub fn assert_tensor(what: &str, actual: &[f32], expected: &[f32], tol: f64) {
    assert_tensor_abs(what, actual, expected, tol, 0.0);
}

pub fn assert_scalar(what: &str, actual: f32, expected: f32, rel: f64, abs: f64) {
    let err = f64::from(actual - expected).abs();
    assert!(
        err <= abs + rel * f64::from(expected).abs(),
        "{what}: {actual} vs {expected}"
    );
}

/// Every tensor `{prefix}{key}` of the file equals ours within `tol` of its largest value plus
/// `abs`, and we have no other.
pub fn assert_named(
    what: &str,
    ours: &[(String, HostTensor)],
    file: &TensorFile,
    prefix: &str,
    (tol, abs): (f64, f64),
) {
    let expected: Vec<String> = file
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix(prefix).map(str::to_string))
        .collect();
    assert!(!expected.is_empty(), "{what}: no `{prefix}*` tensors");
    let ours: HashMap<&str, &HostTensor> = ours.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for key in &expected {
        let (want, shape) = file.f32(&format!("{prefix}{key}")).unwrap();
        let got = ours
            .get(key.as_str())
            .unwrap_or_else(|| panic!("{what}: we have no `{key}`"));
        assert_eq!(got.shape, shape, "{what}: {key} shape");
        assert_tensor_abs(&format!("{what} {key}"), &got.data, &want, tol, abs);
    }
    let extra: Vec<&&str> = ours
        .keys()
        .filter(|k| !expected.iter().any(|e| e == *k))
        .collect();
    assert!(extra.is_empty(), "{what}: only ours have {extra:?}");
}
