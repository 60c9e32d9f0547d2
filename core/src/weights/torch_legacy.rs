//! The legacy (pre-1.6, non-zip) `torch.save` format, as in facenet-pytorch's MTCNN weights:
//! five pickles (magic number, protocol 1001, system info, the object, the sorted storage keys)
//! followed, per storage key, by an i64 element count and the raw little-endian data.

use std::collections::HashMap;

use super::pickle::{Pickled, load};

const MAGIC: i64 = 0x1950a86a20f9469cfc6c_i128 as i64;

/// A tensor read from the file, converted to f32 and made contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct TensorRef {
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn element_size(storage: &str) -> Option<usize> {
    Some(match storage {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "BFloat16Storage" | "ShortStorage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        _ => return None,
    })
}

fn decode(storage: &str, bytes: &[u8]) -> Vec<f32> {
    match storage {
        "FloatStorage" => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        "DoubleStorage" => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        "HalfStorage" => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        "BFloat16Storage" => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        "LongStorage" => bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        "IntStorage" => bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect(),
        "ShortStorage" => bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32)
            .collect(),
        "CharStorage" => bytes.iter().map(|&b| b as i8 as f32).collect(),
        _ => bytes.iter().map(|&b| f32::from(b)).collect(),
    }
}

/// `(storage key, storage type)` of a `('storage', torch.XStorage, key, location, numel, view)`
/// persistent id.
fn storage_id(p: &Pickled) -> Option<(String, String)> {
    let Pickled::PersistentId(id) = p else {
        return None;
    };
    let items = id.items()?;
    if items.first()?.as_str()? != "storage" {
        return None;
    }
    let Pickled::Global(_, ty) = items.get(1)? else {
        return None;
    };
    Some((items.get(2)?.as_str()?.to_string(), ty.clone()))
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn tensor_ref(p: &Pickled, types: &mut HashMap<String, String>) -> Option<TensorRef> {
    let Pickled::Call { callable, args, .. } = p else {
        return None;
    };
    let Pickled::Global(m, n) = callable.as_ref() else {
        return None;
    };
    if m != "torch._utils" || !n.starts_with("_rebuild_tensor") {
        return None;
    }
    let a = args.items()?;
    let (key, ty) = storage_id(a.first()?)?;
    types.insert(key.clone(), ty);
    let dims = |v: &Pickled| -> Option<Vec<usize>> {
        v.items()?
            .iter()
            .map(|x| x.as_int().map(|i| i as usize))
            .collect()
    };
    Some(TensorRef {
        key,
        offset: a.get(1)?.as_int()? as usize,
        shape: dims(a.get(2)?)?,
        stride: dims(a.get(3)?)?,
    })
}

/// Flattens nested dicts into dotted names → tensor references.
fn collect(
    p: &Pickled,
    prefix: &str,
    out: &mut Vec<(String, TensorRef)>,
    types: &mut HashMap<String, String>,
) {
    let entries: Option<&Vec<(Pickled, Pickled)>> = match p {
        Pickled::Dict(d) => Some(d),
        Pickled::Call { state: Some(s), .. } => match s.as_ref() {
            Pickled::Dict(d) => Some(d),
            _ => None,
        },
        _ => None,
    };
    if let Some(entries) = entries {
        for (k, v) in entries {
            let Some(k) = k.as_str() else { continue };
            let name = if prefix.is_empty() {
                k.to_string()
            } else {
                format!("{prefix}.{k}")
            };
            if let Some(t) = tensor_ref(v, types) {
                out.push((name, t));
            } else {
                collect(v, &name, out, types);
            }
        }
    }
}

/// Reads a legacy torch file: every tensor of its (possibly nested) dict by dotted name.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, LegacyTensor)>, String> {
    let mut pos = 0;
    let magic = load(bytes, &mut pos).map_err(|e| format!("not a torch file: {e}"))?;
    let magic_ok = match &magic {
        Pickled::Int(v) => *v == MAGIC,
        Pickled::Bytes(b) => b.len() == 10 && b[..8] == MAGIC.to_le_bytes(),
        _ => false,
    };
    if !magic_ok {
        return Err(
            "not a legacy torch file (bad magic number; zip files need the zip reader)".into(),
        );
    }
    let protocol = load(bytes, &mut pos)?;
    if protocol.as_int() != Some(1001) {
        return Err(format!("unsupported torch protocol {protocol:?}"));
    }
    load(bytes, &mut pos)?; // system info: byte order, type sizes
    let object = load(bytes, &mut pos)?;
    let keys = load(bytes, &mut pos)?;
    let keys: Vec<String> = keys
        .items()
        .ok_or("storage key list missing")?
        .iter()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();

    let mut refs = Vec::new();
    let mut types = HashMap::new();
    collect(&object, "", &mut refs, &mut types);
    if refs.is_empty() {
        return Err("no tensors in the file".into());
    }

    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in keys {
        let ty = types
            .get(&key)
            .cloned()
            .unwrap_or_else(|| "FloatStorage".into());
        let size = element_size(&ty).ok_or_else(|| format!("unsupported storage type {ty}"))?;
        let count = bytes
            .get(pos..pos + 8)
            .ok_or("truncated file (storage header)")?;
        let n = i64::from_le_bytes(count.try_into().map_err(|_| "count")?) as usize;
        pos += 8;
        let data = bytes
            .get(pos..pos + n.checked_mul(size).ok_or("bad storage size")?)
            .ok_or_else(|| format!("truncated file (storage {key}: {n} elements)"))?;
        pos += n * size;
        storages.insert(key, decode(&ty, data));
    }

    refs.into_iter()
        .map(|(name, t)| {
            let storage = storages
                .get(&t.key)
                .ok_or_else(|| format!("{name}: storage {} missing", t.key))?;
            let numel: usize = t.shape.iter().product();
            let mut data = Vec::with_capacity(numel);
            for i in 0..numel {
                let mut rem = i;
                let mut off = t.offset;
                for (d, (&dim, &st)) in t.shape.iter().zip(&t.stride).enumerate().rev() {
                    let _ = d;
                    off += (rem % dim) * st;
                    rem /= dim;
                }
                data.push(
                    *storage
                        .get(off)
                        .ok_or_else(|| format!("{name}: view outside its storage"))?,
                );
            }
            Ok((
                name,
                LegacyTensor {
                    shape: t.shape,
                    data,
                },
            ))
        })
        .collect()
}
