//! `torch.save` files without PyTorch, in both formats:
//! - zip (PyTorch ≥ 1.6): `<name>/data.pkl` plus one stored entry `<name>/data/<key>` per storage
//!   (BiSeNet's `face_parsing.pth`, `ConsistentID-v1.bin`);
//! - legacy: five pickles (magic number, protocol 1001, system info, the object, the sorted
//!   storage keys) followed, per storage key, by an i64 element count and the raw little-endian
//!   data (facenet-pytorch's MTCNN weights).
//!
//! Tensors are read from `_rebuild_tensor_v2` calls anywhere in (nested) dicts and returned
//! under dotted names, converted to f32, ModuleList indices kept as they are.

use std::collections::HashMap;

use burn::tensor::DType;

use super::convert::f32_from_le_bytes;
use super::pickle::{Pickled, load};

const MAGIC: i64 = 0x1950a86a20f9469cfc6c_i128 as i64;

/// A tensor read from a torch file, converted to f32 and made contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct TorchTensor {
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
    // Aligned storages (torch aligns zip entries to 64 bytes) take the vectorised paths.
    let float = match storage {
        "FloatStorage" => Some(DType::F32),
        "HalfStorage" => Some(DType::F16),
        "BFloat16Storage" => Some(DType::BF16),
        _ => None,
    };
    if let Some(values) = float.and_then(|dtype| f32_from_le_bytes(dtype, bytes)) {
        return values;
    }
    match storage {
        "DoubleStorage" => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
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
    // A bare tensor (`torch.save(tensor)`, e.g. an FGID identity) is named by its prefix.
    if prefix.is_empty()
        && let Some(t) = tensor_ref(p, types)
    {
        out.push((String::new(), t));
        return;
    }
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

/// Reads a torch file of either format: every tensor of its (possibly nested) dict by dotted
/// name, or a bare tensor under the empty name.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_zip(bytes)
    } else {
        read_legacy(bytes)
    }
}

/// Stored (uncompressed) zip entries by name, from the central directory.
fn zip_entries(bytes: &[u8]) -> Result<HashMap<String, &[u8]>, String> {
    let u16_at = |o: usize| -> Result<usize, String> {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| "truncated zip".to_string())
    };
    let u32_at = |o: usize| -> Result<usize, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| "truncated zip".to_string())
    };
    let u64_at = |o: usize| -> Result<usize, String> {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
            .ok_or_else(|| "truncated zip".to_string())
    };
    // End of central directory: the last PK\x05\x06 record.
    let search_from = bytes.len().saturating_sub(65_557);
    let eocd = (search_from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("truncated or not a zip file (no end of central directory)")?;
    let mut count = u16_at(eocd + 10)?;
    let mut offset = u32_at(eocd + 16)?;
    if (count == 0xffff || offset == 0xffff_ffff) && eocd >= 20 {
        // Zip64: the locator just before points at the zip64 end record.
        let loc = eocd - 20;
        if bytes[loc..loc + 4] == [0x50, 0x4b, 0x06, 0x07] {
            let rec = u64_at(loc + 8)?;
            count = u64_at(rec + 32)?;
            offset = u64_at(rec + 48)?;
        }
    }
    let mut entries = HashMap::new();
    let mut p = offset;
    for _ in 0..count {
        if bytes.get(p..p + 4) != Some(&[0x50, 0x4b, 0x01, 0x02]) {
            return Err("corrupt zip central directory".into());
        }
        let method = u16_at(p + 10)?;
        let mut size = u32_at(p + 20)?;
        let (name_len, extra_len, comment_len) =
            (u16_at(p + 28)?, u16_at(p + 30)?, u16_at(p + 32)?);
        let mut local = u32_at(p + 42)?;
        let name = String::from_utf8_lossy(
            bytes
                .get(p + 46..p + 46 + name_len)
                .ok_or("truncated zip")?,
        )
        .into_owned();
        // Zip64 extra field: 64-bit sizes / offset where the 32-bit ones are saturated.
        let mut e = p + 46 + name_len;
        let extra_end = e + extra_len;
        while e + 4 <= extra_end {
            let (id, len) = (u16_at(e)?, u16_at(e + 2)?);
            if id == 1 {
                let mut q = e + 4;
                if u32_at(p + 24)? == 0xffff_ffff {
                    q += 8; // uncompressed size
                }
                if size == 0xffff_ffff {
                    size = u64_at(q)?;
                    q += 8;
                }
                if local == 0xffff_ffff {
                    local = u64_at(q)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(format!(
                "zip entry {name} is compressed (method {method}); torch writes stored entries"
            ));
        }
        if bytes.get(local..local + 4) != Some(&[0x50, 0x4b, 0x03, 0x04]) {
            return Err(format!("corrupt zip entry {name}"));
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = bytes
            .get(start..start + size)
            .ok_or_else(|| format!("truncated file (zip entry {name})"))?;
        entries.insert(name, data);
        p += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

fn read_zip(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, String> {
    let entries = zip_entries(bytes)?;
    let (pkl_name, pkl) = entries
        .iter()
        .find(|(n, _)| n.ends_with("data.pkl") && n.matches('/').count() == 1)
        .ok_or("not a torch zip file (no data.pkl)")?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pos = 0;
    let object = load(pkl, &mut pos)?;
    let mut refs = Vec::new();
    let mut types = HashMap::new();
    collect(&object, "", &mut refs, &mut types);
    if refs.is_empty() {
        return Err("no tensors in the file".into());
    }
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for (key, ty) in &types {
        let data = entries
            .get(&format!("{prefix}data/{key}"))
            .ok_or_else(|| format!("storage {key} missing (truncated file?)"))?;
        storages.insert(key.clone(), decode(ty, data));
    }
    materialise(refs, &storages)
}

/// Reads a legacy (pre-zip) torch file.
fn read_legacy(bytes: &[u8]) -> Result<Vec<(String, TorchTensor)>, String> {
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

    materialise(refs, &storages)
}

/// Copies each tensor's (possibly strided) view out of its storage.
fn materialise(
    refs: Vec<(String, TensorRef)>,
    storages: &HashMap<String, Vec<f32>>,
) -> Result<Vec<(String, TorchTensor)>, String> {
    refs.into_iter()
        .map(|(name, t)| {
            let storage = storages
                .get(&t.key)
                .ok_or_else(|| format!("{name}: storage {} missing", t.key))?;
            let data =
                view(storage, &t).ok_or_else(|| format!("{name}: view outside its storage"))?;
            Ok((
                name,
                TorchTensor {
                    shape: t.shape,
                    data,
                },
            ))
        })
        .collect()
}

/// The elements of `t`'s view of `storage`, in row-major order; `None` when the view reaches
/// outside the storage.
fn view(storage: &[f32], t: &TensorRef) -> Option<Vec<f32>> {
    let numel: usize = t.shape.iter().product();
    if numel == 0 {
        return Some(Vec::new());
    }
    // Most views are contiguous (strides of a row-major layout, size-1 dims aside): one copy.
    let mut expected = 1;
    let contiguous = t.shape.iter().zip(&t.stride).rev().all(|(&dim, &st)| {
        let ok = dim == 1 || st == expected;
        expected *= dim;
        ok
    });
    if contiguous {
        return storage.get(t.offset..t.offset + numel).map(<[f32]>::to_vec);
    }
    let mut data = Vec::with_capacity(numel);
    for i in 0..numel {
        let mut rem = i;
        let mut off = t.offset;
        for (&dim, &st) in t.shape.iter().zip(&t.stride).rev() {
            off += (rem % dim) * st;
            rem /= dim;
        }
        data.push(*storage.get(off)?);
    }
    Some(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor_ref(offset: usize, shape: &[usize], stride: &[usize]) -> TensorRef {
        TensorRef {
            key: "0".into(),
            offset,
            shape: shape.to_vec(),
            stride: stride.to_vec(),
        }
    }

    #[test]
    fn views_copy_contiguous_and_strided_layouts() {
        let storage: Vec<f32> = (0..12).map(|i| i as f32).collect();
        // Contiguous with an offset and a size-1 dim of any stride.
        let t = tensor_ref(2, &[2, 1, 3], &[3, 99, 1]);
        assert_eq!(view(&storage, &t), Some(vec![2., 3., 4., 5., 6., 7.]));
        // The transpose of a [3, 4] matrix.
        let t = tensor_ref(0, &[4, 3], &[1, 4]);
        assert_eq!(
            view(&storage, &t),
            Some(vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.])
        );
        // Outside the storage, either way.
        assert_eq!(view(&storage, &tensor_ref(8, &[5], &[1])), None);
        assert_eq!(view(&storage, &tensor_ref(0, &[2, 2], &[1, 11])), None);
    }
}
