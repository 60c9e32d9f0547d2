//! The training fixtures (tests/fixtures/train_step, from tests/scripts/gen_train_step.py): the
//! tiny replica's network as the official trainer starts it, and a step's batch.

use burn::module::{ModuleMapper, Param};
use burn::tensor::{DType, Device, Tensor};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionModel;
use consistentid_core::weights::MemorySource;
use consistentid_native::source::DirSource;
use consistentid_train::localization::FacialTargets;
use consistentid_train::network::{Network, TrainAdapter};
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
