//! An ONNX file decoded into plain Rust: nodes with typed attributes, initializers on the host,
//! graph inputs and outputs. Every op is checked against the executor's op set here, so an
//! unsupported graph fails on load, naming the op and the node.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::ops::SUPPORTED_OPS;
use super::proto::{self, data_type};
use crate::{Error, Result};

/// A constant tensor read from the file.
#[derive(Clone, Debug, PartialEq)]
pub enum HostTensor {
    Float { shape: Vec<usize>, data: Vec<f32> },
    Int { shape: Vec<usize>, data: Vec<i64> },
}

impl HostTensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::Float { shape, .. } | HostTensor::Int { shape, .. } => shape,
        }
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attribute {
    Float(f32),
    Int(i64),
    String(String),
    Tensor(HostTensor),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
}

/// One graph node. Absent optional inputs are empty strings, as in the file.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attributes: HashMap<String, Attribute>,
}

/// A graph input that is not an initializer: its name and declared dims (`None` = symbolic).
#[derive(Clone, Debug)]
pub struct GraphInput {
    pub name: String,
    pub dims: Vec<Option<usize>>,
}

/// A decoded ONNX model.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// The default-domain opset the graph was exported with.
    pub opset: i64,
    pub nodes: Vec<Node>,
    pub initializers: HashMap<String, HostTensor>,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<String>,
}

fn bad(path: &str, reason: impl Into<String>) -> Error {
    Error::WeightFile {
        path: path.to_string(),
        reason: reason.into(),
    }
}

impl OnnxModel {
    /// Decodes an ONNX file. `path` only names the file in errors.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let model = proto::ModelProto::decode(bytes)
            .map_err(|e| bad(path, format!("not an ONNX model (protobuf: {e})")))?;
        let graph = model
            .graph
            .ok_or_else(|| bad(path, "not an ONNX model (no graph)"))?;
        if graph.node.is_empty() {
            return Err(bad(path, "not an ONNX model (empty graph)"));
        }
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .unwrap_or(1);

        let mut initializers = HashMap::new();
        for t in &graph.initializer {
            let tensor =
                host_tensor(t).map_err(|r| bad(path, format!("initializer `{}`: {r}", t.name)))?;
            initializers.insert(t.name.clone(), tensor);
        }

        let mut nodes = Vec::with_capacity(graph.node.len());
        for (i, n) in graph.node.iter().enumerate() {
            let name = if n.name.is_empty() {
                format!("#{i}")
            } else {
                n.name.clone()
            };
            if !(n.domain.is_empty() || n.domain == "ai.onnx")
                || !SUPPORTED_OPS.contains(&n.op_type.as_str())
            {
                let op = if n.domain.is_empty() {
                    n.op_type.clone()
                } else {
                    format!("{}::{}", n.domain, n.op_type)
                };
                return Err(Error::UnsupportedOp { op, node: name });
            }
            let mut attributes = HashMap::new();
            for a in &n.attribute {
                let value = attribute(a)
                    .map_err(|r| bad(path, format!("node `{name}` attribute `{}`: {r}", a.name)))?;
                attributes.insert(a.name.clone(), value);
            }
            nodes.push(Node {
                name,
                op: n.op_type.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attributes,
            });
        }

        let inputs = graph
            .input
            .iter()
            .filter(|v| !initializers.contains_key(&v.name))
            .map(|v| GraphInput {
                name: v.name.clone(),
                dims: v
                    .r#type
                    .as_ref()
                    .and_then(|t| t.tensor_type.as_ref())
                    .and_then(|t| t.shape.as_ref())
                    .map(|s| {
                        s.dim
                            .iter()
                            .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        let outputs: Vec<String> = graph.output.iter().map(|v| v.name.clone()).collect();

        let model = Self {
            opset,
            nodes,
            initializers,
            inputs,
            outputs,
        };
        model.check_edges(path)?;
        Ok(model)
    }

    /// Every node input and graph output must be produced before it is used.
    fn check_edges(&self, path: &str) -> Result<()> {
        let mut known: HashSet<&str> = self.initializers.keys().map(String::as_str).collect();
        known.extend(self.inputs.iter().map(|i| i.name.as_str()));
        for node in &self.nodes {
            for input in node.inputs.iter().filter(|i| !i.is_empty()) {
                if !known.contains(input.as_str()) {
                    return Err(bad(
                        path,
                        format!(
                            "node `{}` reads `{input}`, which no earlier node produces",
                            node.name
                        ),
                    ));
                }
            }
            known.extend(node.outputs.iter().map(String::as_str));
        }
        for output in &self.outputs {
            if !known.contains(output.as_str()) {
                return Err(bad(
                    path,
                    format!("graph output `{output}` is never produced"),
                ));
            }
        }
        Ok(())
    }
}

fn attribute(a: &proto::AttributeProto) -> core::result::Result<Attribute, String> {
    // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7.
    Ok(match a.r#type {
        1 => Attribute::Float(a.f),
        2 => Attribute::Int(a.i),
        3 => Attribute::String(String::from_utf8_lossy(&a.s).into_owned()),
        4 => Attribute::Tensor(host_tensor(
            a.t.as_ref().ok_or("tensor attribute without a tensor")?,
        )?),
        6 => Attribute::Floats(a.floats.clone()),
        7 => Attribute::Ints(a.ints.clone()),
        other => return Err(format!("attribute type {other} is not supported")),
    })
}

/// Reads a `TensorProto` (raw little-endian data or the typed repeated fields).
pub fn host_tensor(t: &proto::TensorProto) -> core::result::Result<HostTensor, String> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err("external data files are not supported".into());
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect::<core::result::Result<Vec<_>, _>>()?;
    let n: usize = shape.iter().product();
    let raw = &t.raw_data;
    let from_raw = |width: usize| -> core::result::Result<Option<Vec<&[u8]>>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() != n * width {
            return Err(format!(
                "{} bytes of data for {n} elements of {width} bytes (truncated file?)",
                raw.len()
            ));
        }
        Ok(Some(raw.chunks_exact(width).collect()))
    };
    let check = |len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(format!("{len} values for shape {shape:?}"))
        }
    };
    let tensor = match t.data_type {
        data_type::FLOAT => {
            let data = match from_raw(4)? {
                Some(c) => c
                    .iter()
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                None => t.float_data.clone(),
            };
            check(data.len())?;
            HostTensor::Float { shape, data }
        }
        data_type::DOUBLE => {
            let data: Vec<f32> = match from_raw(8)? {
                Some(c) => c
                    .iter()
                    .map(|b| f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
                None => t.double_data.iter().map(|&v| v as f32).collect(),
            };
            check(data.len())?;
            HostTensor::Float { shape, data }
        }
        data_type::FLOAT16 | data_type::BFLOAT16 => {
            let half_bits: Vec<u16> = match from_raw(2)? {
                Some(c) => c.iter().map(|b| u16::from_le_bytes([b[0], b[1]])).collect(),
                None => t.int32_data.iter().map(|&v| v as u16).collect(),
            };
            let data: Vec<f32> = if t.data_type == data_type::FLOAT16 {
                half_bits
                    .iter()
                    .map(|&b| half::f16::from_bits(b).to_f32())
                    .collect()
            } else {
                half_bits
                    .iter()
                    .map(|&b| half::bf16::from_bits(b).to_f32())
                    .collect()
            };
            check(data.len())?;
            HostTensor::Float { shape, data }
        }
        data_type::INT64 => {
            let data = match from_raw(8)? {
                Some(c) => c
                    .iter()
                    .map(|b| i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])))
                    .collect(),
                None => t.int64_data.clone(),
            };
            check(data.len())?;
            HostTensor::Int { shape, data }
        }
        data_type::INT32 => {
            let data: Vec<i64> = match from_raw(4)? {
                Some(c) => c
                    .iter()
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                    .collect(),
                None => t.int32_data.iter().map(|&v| v as i64).collect(),
            };
            check(data.len())?;
            HostTensor::Int { shape, data }
        }
        data_type::UINT8 | data_type::INT8 | data_type::BOOL => {
            let data: Vec<i64> = match from_raw(1)? {
                Some(c) if t.data_type == data_type::INT8 => {
                    c.iter().map(|b| b[0] as i8 as i64).collect()
                }
                Some(c) => c.iter().map(|b| b[0] as i64).collect(),
                None => t.int32_data.iter().map(|&v| v as i64).collect(),
            };
            check(data.len())?;
            HostTensor::Int { shape, data }
        }
        other => return Err(format!("tensor data type {other} is not supported")),
    };
    Ok(tensor)
}
