//! Running a decoded graph on a burn device.

use std::collections::HashMap;

use burn::tensor::Device;

use super::model::{HostTensor, OnnxModel};
use super::ops::{self, OpContext};
use super::value::{FloatValue, IntValue, MAX_RANK, Value};
use crate::{Error, Result};

/// A model ready to run: its float initializers already on the device.
pub struct OnnxSession {
    model: OnnxModel,
    constants: HashMap<String, Value>,
    /// For each node, the values whose last reader it is (freed after it runs).
    frees: Vec<Vec<String>>,
    device: Device,
}

impl OnnxSession {
    pub fn new(model: OnnxModel, device: &Device) -> Result<Self> {
        let mut constants = HashMap::new();
        for (name, t) in &model.initializers {
            if t.shape().len() > MAX_RANK {
                return Err(Error::OnnxNode {
                    node: name.clone(),
                    op: "initializer".into(),
                    reason: format!("rank {} is above the supported {MAX_RANK}", t.shape().len()),
                });
            }
            let v = match t {
                HostTensor::Float { shape, data } => {
                    Value::Float(FloatValue::from_host(shape.clone(), data.clone(), device))
                }
                HostTensor::Int { shape, data } => {
                    Value::Int(IntValue::new(shape.clone(), data.clone()))
                }
            };
            constants.insert(name.clone(), v);
        }
        let mut last_use: HashMap<&str, usize> = HashMap::new();
        for (i, node) in model.nodes.iter().enumerate() {
            for input in &node.inputs {
                last_use.insert(input, i);
            }
        }
        let mut frees = vec![Vec::new(); model.nodes.len()];
        for (name, i) in last_use {
            if !model.outputs.iter().any(|o| o == name) && !constants.contains_key(name) {
                frees[i].push(name.to_string());
            }
        }
        Ok(Self {
            model,
            constants,
            frees,
            device: device.clone(),
        })
    }

    pub fn model(&self) -> &OnnxModel {
        &self.model
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the graph. `inputs` must name every graph input (see [`OnnxModel::inputs`]);
    /// declared fixed dims are checked. Returns the graph outputs in graph order.
    pub fn run(&self, inputs: Vec<(String, Value)>) -> Result<Vec<(String, Value)>> {
        let mut values: HashMap<String, Value> = HashMap::new();
        for (name, v) in inputs {
            let Some(decl) = self.model.inputs.iter().find(|i| i.name == name) else {
                return Err(Error::Input {
                    name,
                    reason: format!(
                        "the graph has no such input (inputs: {})",
                        self.input_names().join(", ")
                    ),
                });
            };
            let shape = v.shape();
            let fits = decl.dims.is_empty()
                || (decl.dims.len() == shape.len()
                    && decl
                        .dims
                        .iter()
                        .zip(shape)
                        .all(|(d, s)| d.is_none_or(|d| d == *s)));
            if !fits || shape.len() > MAX_RANK {
                return Err(Error::Input {
                    name,
                    reason: format!("shape {shape:?} does not fit the declared {:?}", decl.dims),
                });
            }
            values.insert(name, v);
        }
        if let Some(missing) = self
            .model
            .inputs
            .iter()
            .find(|i| !values.contains_key(&i.name))
        {
            return Err(Error::Input {
                name: missing.name.clone(),
                reason: "the graph needs this input".into(),
            });
        }

        for (node, frees) in self.model.nodes.iter().zip(&self.frees) {
            let node_inputs = node
                .inputs
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        None
                    } else {
                        values
                            .get(name)
                            .or_else(|| self.constants.get(name))
                            .cloned()
                    }
                })
                .collect();
            let ctx = OpContext {
                node,
                inputs: node_inputs,
                device: &self.device,
                opset: self.model.opset,
            };
            let outputs = ops::run(&ctx)?;
            for (name, v) in node.outputs.iter().zip(outputs) {
                if !name.is_empty() {
                    values.insert(name.clone(), v);
                }
            }
            for name in frees {
                values.remove(name);
            }
        }
        self.model
            .outputs
            .iter()
            .map(|name| {
                values
                    .get(name)
                    .or_else(|| self.constants.get(name))
                    .cloned()
                    .map(|v| (name.clone(), v))
                    .ok_or_else(|| Error::OnnxNode {
                        node: name.clone(),
                        op: "output".into(),
                        reason: "never produced".into(),
                    })
            })
            .collect()
    }

    pub fn input_names(&self) -> Vec<&str> {
        self.model.inputs.iter().map(|i| i.name.as_str()).collect()
    }
}
