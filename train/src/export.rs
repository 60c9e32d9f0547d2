//! The trained weights in the released layout: `ConsistentID-v1.bin` as the official SD1.5
//! pipeline loads it (a torch zip pickle of `image_proj` in bf16, `adapter_modules` and
//! `FacialEncoder` in f32 — the key `image_proj`, not the official converter's
//! `image_proj_model`, which the SD1.5 loader does not read), and the same tensors as
//! safetensors under prefixed keys.

use consistentid_core::tensor_io::{NamedTensor, to_safetensors};
use consistentid_core::weights::torch_write::{SaveDType, SaveTensor, save};

use crate::Result;
use crate::network::Network;

/// The three groups of the release file, in the official order.
const GROUPS: [(&str, SaveDType); 3] = [
    ("image_proj", SaveDType::BF16),
    ("adapter_modules", SaveDType::F32),
    ("FacialEncoder", SaveDType::F32),
];

/// `ConsistentID-v1.bin`'s bytes.
pub fn release_bin(net: &Network) -> Vec<u8> {
    let params = net.release_parameters();
    let groups: Vec<(&str, Vec<SaveTensor>)> = GROUPS
        .iter()
        .map(|&(group, dtype)| {
            let prefix = format!("{group}.");
            let tensors = params
                .iter()
                .filter_map(|(key, t)| {
                    Some(SaveTensor {
                        name: key.strip_prefix(&prefix)?.to_string(),
                        shape: t.shape.clone(),
                        data: t.data.clone(),
                        dtype,
                    })
                })
                .collect();
            (group, tensors)
        })
        .collect();
    let borrowed: Vec<(&str, &[SaveTensor])> =
        groups.iter().map(|(g, t)| (*g, t.as_slice())).collect();
    save(&borrowed)
}

/// The same tensors as safetensors (f32, keys `image_proj.…`, `adapter_modules.…`,
/// `FacialEncoder.…`).
pub fn release_safetensors(net: &Network) -> Result<Vec<u8>> {
    let tensors: Vec<NamedTensor> = net
        .release_parameters()
        .iter()
        .map(|(key, t)| NamedTensor::from_f32(key, t.shape.clone(), &t.data))
        .collect();
    Ok(to_safetensors(&tensors, None)?)
}
