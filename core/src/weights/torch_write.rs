//! Writing `torch.save` zip files without PyTorch: a dict of named state dicts (each an
//! `OrderedDict` of tensors), as `ConsistentID-v1.bin` holds `image_proj` (bf16),
//! `adapter_modules` and `FacialEncoder` (f32). The layout is the one `torch.save` writes and
//! `torch.load` reads: stored (uncompressed) zip entries `archive/data.pkl` (pickle protocol 2,
//! `torch._utils._rebuild_tensor_v2` over `('storage', torch.FloatStorage|BFloat16Storage, key,
//! 'cpu', numel)` persistent ids), `archive/data/<key>` (little-endian, 64-byte aligned) and
//! `archive/version`.

use flate2::Crc;
use half::bf16;

/// The element type a tensor is saved in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveDType {
    F32,
    BF16,
}

impl SaveDType {
    fn storage(self) -> &'static str {
        match self {
            Self::F32 => "FloatStorage",
            Self::BF16 => "BFloat16Storage",
        }
    }

    fn bytes(self, values: &[f32]) -> Vec<u8> {
        match self {
            Self::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Self::BF16 => values
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

/// One tensor to save.
#[derive(Debug, Clone)]
pub struct SaveTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub dtype: SaveDType,
}

/// Pickle protocol 2, only the opcodes a state dict needs.
struct Pickler(Vec<u8>);

impl Pickler {
    fn text(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
    }

    fn int(&mut self, v: usize) {
        match u32::try_from(v) {
            Ok(v) if v < 1 << 31 => {
                self.0.push(b'J');
                self.0.extend((v as i32).to_le_bytes());
            }
            _ => {
                // LONG1 with 8 bytes.
                self.0.extend([0x8a, 8]);
                self.0.extend((v as i64).to_le_bytes());
            }
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend(name.as_bytes());
        self.0.push(b'\n');
    }

    fn ints_tuple(&mut self, v: &[usize]) {
        self.0.push(b'(');
        for &x in v {
            self.int(x);
        }
        self.0.push(b't');
    }

    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend([b')', b'R']);
    }

    fn tensor(&mut self, key: usize, t: &SaveTensor) {
        let numel: usize = t.shape.iter().product();
        let mut stride = vec![1usize; t.shape.len()];
        for i in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * t.shape[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.0.push(b'(');
        self.0.push(b'(');
        self.text("storage");
        self.global("torch", t.dtype.storage());
        self.text(&key.to_string());
        self.text("cpu");
        self.int(numel);
        self.0.extend([b't', b'Q']);
        self.int(0);
        self.ints_tuple(&t.shape);
        self.ints_tuple(&stride);
        self.0.push(0x89); // False: requires_grad
        self.ordered_dict(); // backward hooks
        self.0.extend([b't', b'R']);
    }
}

/// `torch.save({group: OrderedDict(tensors) for group, tensors in groups})` as bytes.
pub fn save(groups: &[(&str, &[SaveTensor])]) -> Vec<u8> {
    let mut p = Pickler(vec![0x80, 2, b'}', b'(']);
    let mut storages: Vec<Vec<u8>> = Vec::new();
    for (group, tensors) in groups {
        p.text(group);
        p.ordered_dict();
        p.0.push(b'(');
        for t in tensors.iter() {
            p.text(&t.name);
            p.tensor(storages.len(), t);
            storages.push(t.dtype.bytes(&t.data));
        }
        p.0.push(b'u');
    }
    p.0.extend([b'u', b'.']);
    archive(&p.0, &storages)
}

/// `torch.save(tensor)`: one bare tensor, as the official FGID scripts save an identity
/// (`torch.save(torch.from_numpy(normed_embedding).unsqueeze(0))`).
pub fn save_tensor(t: &SaveTensor) -> Vec<u8> {
    let mut p = Pickler(vec![0x80, 2]);
    p.tensor(0, t);
    p.0.push(b'.');
    archive(&p.0, &[t.dtype.bytes(&t.data)])
}

/// The zip `torch.load` reads: the pickle, one entry per storage, the version.
fn archive(pickle: &[u8], storages: &[Vec<u8>]) -> Vec<u8> {
    let mut zip = ZipWriter::default();
    zip.add("archive/data.pkl", pickle);
    for (i, bytes) in storages.iter().enumerate() {
        zip.add(&format!("archive/data/{i}"), bytes);
    }
    zip.add("archive/version", b"3\n");
    zip.finish()
}

/// A zip of stored entries, each entry's data aligned to 64 bytes (as torch's writer does,
/// with padding in the local header's extra field).
#[derive(Default)]
struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl ZipWriter {
    fn add(&mut self, name: &str, data: &[u8]) {
        let mut crc = Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let offset = self.out.len() as u32;
        let header = 30 + name.len();
        // Extra field: id "FB", a length, zero padding up to the next 64-byte boundary.
        let pad = (64 - (self.out.len() + header + 4) % 64) % 64;
        let size = data.len() as u32;
        let fixed = |sig: u32, v: &mut Vec<u8>| {
            v.extend(sig.to_le_bytes());
        };
        fixed(0x0403_4b50, &mut self.out);
        for v in [20u16, 0, 0, 0, 0] {
            self.out.extend(v.to_le_bytes());
        }
        self.out.extend(crc.to_le_bytes());
        self.out.extend(size.to_le_bytes());
        self.out.extend(size.to_le_bytes());
        self.out.extend((name.len() as u16).to_le_bytes());
        self.out.extend(((pad + 4) as u16).to_le_bytes());
        self.out.extend(name.as_bytes());
        self.out.extend(b"FB");
        self.out.extend((pad as u16).to_le_bytes());
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self.out.extend(data);

        fixed(0x0201_4b50, &mut self.central);
        for v in [20u16, 20, 0, 0, 0, 0] {
            self.central.extend(v.to_le_bytes());
        }
        self.central.extend(crc.to_le_bytes());
        self.central.extend(size.to_le_bytes());
        self.central.extend(size.to_le_bytes());
        self.central.extend((name.len() as u16).to_le_bytes());
        for v in [0u16, 0, 0, 0] {
            self.central.extend(v.to_le_bytes());
        }
        self.central.extend(0u32.to_le_bytes());
        self.central.extend(offset.to_le_bytes());
        self.central.extend(name.as_bytes());
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        let at = self.out.len() as u32;
        let size = self.central.len() as u32;
        self.out.append(&mut self.central);
        self.out.extend(0x0605_4b50u32.to_le_bytes());
        for v in [0u16, 0, self.count, self.count] {
            self.out.extend(v.to_le_bytes());
        }
        self.out.extend(size.to_le_bytes());
        self.out.extend(at.to_le_bytes());
        self.out.extend(0u16.to_le_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::torch_file;

    #[test]
    fn what_is_written_reads_back_in_both_dtypes() {
        let a = SaveTensor {
            name: "proj.0.weight".into(),
            shape: vec![2, 3],
            data: vec![1.0, -2.5, 3.25, 0.0, 1e-3, 7.0],
            dtype: SaveDType::BF16,
        };
        let b = SaveTensor {
            name: "0.to_k_ip.weight".into(),
            shape: vec![3],
            data: vec![0.1, 0.2, 0.3],
            dtype: SaveDType::F32,
        };
        let bytes = save(&[
            ("image_proj", std::slice::from_ref(&a)),
            ("adapter_modules", std::slice::from_ref(&b)),
        ]);
        let mut read: Vec<_> = torch_file::read(&bytes).unwrap();
        read.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(read[0].0, "adapter_modules.0.to_k_ip.weight");
        assert_eq!(read[0].1.data, b.data);
        assert_eq!(read[1].0, "image_proj.proj.0.weight");
        assert_eq!(read[1].1.shape, vec![2, 3]);
        let rounded: Vec<f32> = a.data.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
        assert_eq!(read[1].1.data, rounded);
    }

    #[test]
    fn a_bare_tensor_reads_back() {
        let t = SaveTensor {
            name: String::new(),
            shape: vec![1, 4],
            data: vec![0.5, -0.25, 0.125, 1.0],
            dtype: SaveDType::F32,
        };
        let read = torch_file::read(&save_tensor(&t)).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].1.shape, vec![1, 4]);
        assert_eq!(read[0].1.data, t.data);
    }
}
