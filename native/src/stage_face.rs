//! The face stages: any ONNX graph, face detection, alignment + ArcFace.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use consistentid_core::onnx::{FloatValue, IntValue, OnnxModel, OnnxSession, Value};
use consistentid_core::tensor_io::{NamedTensor, TensorFile};

use crate::device::{DeviceChoice, select};
use crate::stage::write;

/// Arguments of `stage onnx`.
#[derive(Debug, Args)]
pub struct OnnxArgs {
    /// The ONNX file.
    #[arg(long, value_name = "F.onnx")]
    pub model: PathBuf,
    /// Safetensors file holding one tensor per graph input, named as in the graph (float
    /// tensors as f32/f16/bf16/f64, integer ones as i64/i32).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Output safetensors file: every graph output under its graph name (f32 or i64).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Reads and decodes an ONNX file.
pub fn load_onnx(path: &std::path::Path) -> Result<OnnxModel> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(OnnxModel::parse(&bytes, &path.display().to_string())?)
}

pub fn onnx(args: &OnnxArgs, device: DeviceChoice) -> Result<()> {
    let model = load_onnx(&args.model)?;
    let (device, _) = select(device)?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read input {}", args.input.display()))?;
    let file = TensorFile::parse(&args.input.display().to_string(), &bytes)?;
    let session = OnnxSession::new(model, &device)?;
    let mut inputs = Vec::new();
    for name in session.input_names() {
        let value = match file.i64(name) {
            Ok((data, shape)) => Value::Int(IntValue::new(shape, data)),
            Err(_) => {
                let (data, shape) = file.f32(name).with_context(|| {
                    format!(
                        "{} must hold the graph inputs {}",
                        args.input.display(),
                        session.input_names().join(", ")
                    )
                })?;
                if shape.len() > consistentid_core::onnx::value::MAX_RANK {
                    bail!(
                        "input `{name}` has rank {}, above the supported 6",
                        shape.len()
                    );
                }
                Value::Float(FloatValue::from_host(shape, data, &device))
            }
        };
        inputs.push((name.to_string(), value));
    }
    let outputs = session.run(inputs)?;
    let tensors: Vec<NamedTensor> = outputs
        .into_iter()
        .map(|(name, v)| match v {
            Value::Float(f) => NamedTensor::from_f32(&name, f.shape.clone(), &f.to_host()),
            Value::Int(i) => NamedTensor::from_i64(&name, i.shape, &i.data),
        })
        .collect();
    write(&args.out, &tensors, "")
}
