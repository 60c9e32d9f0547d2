//! BiSeNet face parsing (zllrunning/face-parsing.PyTorch, the `face_parsing.pth` /
//! `79999_iter.pth` state dict): a ResNet-18 context path with attention refinement, feature
//! fusion and an output head, giving 19 CelebAMask-HQ classes per pixel.
//!
//! Widths are read from the checkpoint, so the real model and tiny test replicas load through the
//! same code. BatchNorm (eval mode, eps 1e-5) is folded into per-channel scale and shift on load.

pub mod labels;
pub mod parse;
pub mod preprocess;
pub mod regions;

use std::collections::HashMap;

use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{ConvOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::weights::torch_file::{self, TorchTensor};
use crate::{Error, Result};

const BN_EPS: f64 = 1e-5;

/// A BiSeNet loaded from a torch state dict.
pub struct BiSeNet {
    convs: HashMap<String, Tensor<4>>,
    /// Folded BatchNorm: (scale, shift) per channel, shaped [1, C, 1, 1].
    norms: HashMap<String, (Tensor<4>, Tensor<4>)>,
    /// Number of classes (19 for the released model).
    pub num_classes: usize,
}

/// The network outputs at the input resolution.
pub struct BiSeNetOutput {
    /// Logits of the main head, `[N, classes, H, W]`.
    pub logits: Tensor<4>,
    /// `argmax` over classes, `[N, H, W]`.
    pub labels: Tensor<3, Int>,
}

/// Every conv and BatchNorm of the network, by state-dict prefix.
fn layout() -> (Vec<String>, Vec<String>) {
    let mut convs = vec!["cp.resnet.conv1".to_string()];
    let mut norms = vec!["cp.resnet.bn1".to_string()];
    for layer in 1..=4 {
        for block in 0..2 {
            let p = format!("cp.resnet.layer{layer}.{block}");
            convs.extend([format!("{p}.conv1"), format!("{p}.conv2")]);
            norms.extend([format!("{p}.bn1"), format!("{p}.bn2")]);
            if block == 0 && layer > 1 {
                convs.push(format!("{p}.downsample.0"));
                norms.push(format!("{p}.downsample.1"));
            }
        }
    }
    for cbr in [
        "cp.arm16.conv",
        "cp.arm32.conv",
        "cp.conv_head32",
        "cp.conv_head16",
        "cp.conv_avg",
        "ffm.convblk",
        "conv_out.conv",
        "conv_out16.conv",
        "conv_out32.conv",
    ] {
        convs.push(format!("{cbr}.conv"));
        norms.push(format!("{cbr}.bn"));
    }
    for arm in ["cp.arm16", "cp.arm32"] {
        convs.push(format!("{arm}.conv_atten"));
        norms.push(format!("{arm}.bn_atten"));
    }
    convs.extend(
        [
            "ffm.conv1",
            "ffm.conv2",
            "conv_out.conv_out",
            "conv_out16.conv_out",
            "conv_out32.conv_out",
        ]
        .map(String::from),
    );
    (convs, norms)
}

impl BiSeNet {
    /// Loads a torch state dict (zip or legacy format). `path` names the file in errors.
    pub fn load(bytes: &[u8], path: &str, device: &Device) -> Result<Self> {
        let tensors = torch_file::read(bytes).map_err(|reason| Error::WeightFile {
            path: path.to_string(),
            reason,
        })?;
        Self::from_tensors(tensors.into_iter().collect(), path, device)
    }

    /// Builds the network from state-dict tensors; every one must be used (BatchNorm's
    /// `num_batches_tracked` aside).
    pub fn from_tensors(
        mut tensors: HashMap<String, TorchTensor>,
        path: &str,
        device: &Device,
    ) -> Result<Self> {
        let mismatch = |reason: String| Error::WeightMismatch {
            path: path.to_string(),
            reason,
        };
        // Some exports wrap the state dict (`{"state_dict": ...}`) or prefix `module.`.
        let keys: Vec<String> = tensors.keys().cloned().collect();
        for k in keys {
            let stripped = k
                .trim_start_matches("state_dict.")
                .trim_start_matches("module.")
                .to_string();
            if stripped != k
                && let Some(t) = tensors.remove(&k)
            {
                tensors.insert(stripped, t);
            }
        }
        let (conv_names, norm_names) = layout();
        let mut take = |name: String| -> Result<TorchTensor> {
            tensors.remove(&name).ok_or_else(|| {
                mismatch(format!(
                    "`{name}` missing: not a BiSeNet face-parsing state dict"
                ))
            })
        };
        let upload4 = |t: &TorchTensor| -> Result<Tensor<4>> {
            let s: [usize; 4] = t
                .shape
                .clone()
                .try_into()
                .map_err(|_| Error::WeightMismatch {
                    path: path.to_string(),
                    reason: format!("a conv weight has shape {:?}", t.shape),
                })?;
            Ok(Tensor::from_data(
                TensorData::new(t.data.clone(), s),
                device,
            ))
        };
        let mut convs = HashMap::new();
        for name in conv_names {
            let t = take(format!("{name}.weight"))?;
            convs.insert(name, upload4(&t)?);
        }
        let mut norms = HashMap::new();
        for name in norm_names {
            let w = take(format!("{name}.weight"))?;
            let b = take(format!("{name}.bias"))?;
            let m = take(format!("{name}.running_mean"))?;
            let v = take(format!("{name}.running_var"))?;
            let c = w.data.len();
            if [&b, &m, &v].iter().any(|t| t.data.len() != c) {
                return Err(mismatch(format!("`{name}` parameters differ in size")));
            }
            let mut scale = Vec::with_capacity(c);
            let mut shift = Vec::with_capacity(c);
            for i in 0..c {
                let s = f64::from(w.data[i]) / (f64::from(v.data[i]) + BN_EPS).sqrt();
                scale.push(s as f32);
                shift.push((f64::from(b.data[i]) - f64::from(m.data[i]) * s) as f32);
            }
            let up = |d: Vec<f32>| Tensor::from_data(TensorData::new(d, [1, c, 1, 1]), device);
            norms.insert(name, (up(scale), up(shift)));
        }
        tensors.retain(|k, _| !k.ends_with("num_batches_tracked"));
        if let Some(extra) = tensors.keys().next() {
            return Err(mismatch(format!("unexpected tensor `{extra}`")));
        }
        let num_classes = convs["conv_out.conv_out"].dims()[0];
        let net = Self {
            convs,
            norms,
            num_classes,
        };
        net.check_shapes().map_err(mismatch)?;
        Ok(net)
    }

    /// Channel counts must chain; checked once so that forward cannot fail.
    fn check_shapes(&self) -> core::result::Result<(), String> {
        let out = |n: &str| self.convs[n].dims()[0];
        let inp = |n: &str| self.convs[n].dims()[1];
        let mut edges: Vec<(String, usize)> = vec![("cp.resnet.conv1".into(), 3)];
        let mut prev = out("cp.resnet.conv1");
        for layer in 1..=4 {
            for block in 0..2 {
                let p = format!("cp.resnet.layer{layer}.{block}");
                edges.push((format!("{p}.conv1"), prev));
                edges.push((format!("{p}.conv2"), out(&format!("{p}.conv1"))));
                if block == 0 && layer > 1 {
                    edges.push((format!("{p}.downsample.0"), prev));
                }
                prev = out(&format!("{p}.conv2"));
            }
        }
        let c = |l: usize| out(&format!("cp.resnet.layer{l}.1.conv2"));
        let a = out("cp.arm32.conv.conv");
        edges.extend([
            ("cp.arm16.conv.conv".into(), c(3)),
            ("cp.arm32.conv.conv".into(), c(4)),
            ("cp.conv_avg.conv".into(), c(4)),
            ("cp.conv_head32.conv".into(), a),
            ("cp.conv_head16.conv".into(), a),
            ("ffm.convblk.conv".into(), c(2) + a),
            ("conv_out.conv.conv".into(), out("ffm.convblk.conv")),
            ("conv_out16.conv.conv".into(), a),
            ("conv_out32.conv.conv".into(), a),
        ]);
        for (name, want) in edges {
            if inp(&name) != want {
                return Err(format!(
                    "`{name}.weight` takes {} channels, expected {want}",
                    inp(&name)
                ));
            }
        }
        for (name, conv) in &self.convs {
            if let Some((scale, _)) = self
                .norms
                .get(&name.replace(".conv", ".bn"))
                .filter(|_| name.ends_with(".conv"))
                && scale.dims()[1] != conv.dims()[0]
            {
                return Err(format!("`{name}` and its BatchNorm differ in channels"));
            }
        }
        Ok(())
    }

    fn conv(&self, name: &str, x: Tensor<4>, stride: usize) -> Tensor<4> {
        let w = self.convs[name].clone();
        let pad = w.dims()[2] / 2;
        conv2d(
            x,
            w,
            None,
            ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1),
        )
    }

    fn bn(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        let (scale, shift) = &self.norms[name];
        x.mul(scale.clone()).add(shift.clone())
    }

    /// ConvBNReLU.
    fn cbr(&self, prefix: &str, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn(
            &format!("{prefix}.bn"),
            self.conv(&format!("{prefix}.conv"), x, 1),
        ))
    }

    fn block(&self, p: &str, x: Tensor<4>, stride: usize) -> Tensor<4> {
        let r = relu(self.bn(
            &format!("{p}.bn1"),
            self.conv(&format!("{p}.conv1"), x.clone(), stride),
        ));
        let r = self.bn(&format!("{p}.bn2"), self.conv(&format!("{p}.conv2"), r, 1));
        let short = if self.convs.contains_key(&format!("{p}.downsample.0")) {
            self.bn(
                &format!("{p}.downsample.1"),
                self.conv(&format!("{p}.downsample.0"), x, stride),
            )
        } else {
            x
        };
        relu(short + r)
    }

    fn gap(x: Tensor<4>) -> Tensor<4> {
        x.mean_dim(3).mean_dim(2)
    }

    /// Attention refinement: features times a channel gate.
    fn arm(&self, p: &str, x: Tensor<4>) -> Tensor<4> {
        let feat = self.cbr(&format!("{p}.conv"), x);
        let att = self.bn(
            &format!("{p}.bn_atten"),
            self.conv(&format!("{p}.conv_atten"), Self::gap(feat.clone()), 1),
        );
        feat.mul(sigmoid(att))
    }

    fn nearest(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        interpolate(
            x,
            InterpolateOptions::new(InterpolateMode::Nearest).with_output_size(size),
        )
    }

    /// # Shapes
    /// - `x`: `[N, 3, H, W]`, ImageNet-normalised (H, W multiples of 32) → [`BiSeNetOutput`]
    pub fn forward(&self, x: Tensor<4>) -> BiSeNetOutput {
        let [_, _, h, w] = x.dims();
        // ResNet-18.
        let x = relu(self.bn("cp.resnet.bn1", self.conv("cp.resnet.conv1", x, 2)));
        let x = max_pool2d(
            x,
            MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
        );
        let mut feats = Vec::new();
        let mut x = x;
        for layer in 1..=4 {
            x = self.block(
                &format!("cp.resnet.layer{layer}.0"),
                x,
                if layer == 1 { 1 } else { 2 },
            );
            x = self.block(&format!("cp.resnet.layer{layer}.1"), x, 1);
            feats.push(x.clone());
        }
        let (feat8, feat16, feat32) = (feats[1].clone(), feats[2].clone(), feats[3].clone());
        let size = |t: &Tensor<4>| [t.dims()[2], t.dims()[3]];
        // Context path.
        let avg = self.cbr("cp.conv_avg", Self::gap(feat32.clone()));
        let avg_up = Self::nearest(avg, size(&feat32));
        let sum32 = self.arm("cp.arm32", feat32) + avg_up;
        let up32 = self.cbr("cp.conv_head32", Self::nearest(sum32, size(&feat16)));
        let sum16 = self.arm("cp.arm16", feat16) + up32;
        let up16 = self.cbr("cp.conv_head16", Self::nearest(sum16, size(&feat8)));
        // Feature fusion.
        let feat = self.cbr("ffm.convblk", Tensor::cat(vec![feat8, up16], 1));
        let att = relu(self.conv("ffm.conv1", Self::gap(feat.clone()), 1));
        let att = sigmoid(self.conv("ffm.conv2", att, 1));
        let fused = feat.clone().mul(att) + feat;
        // Main head, bilinear (align_corners) back to the input size.
        let out = self.conv("conv_out.conv_out", self.cbr("conv_out.conv", fused), 1);
        let logits = interpolate(
            out,
            InterpolateOptions::new(InterpolateMode::Bilinear)
                .with_align_corners(true)
                .with_output_size([h, w]),
        );
        let labels = logits.clone().argmax(1).squeeze_dim(1);
        BiSeNetOutput { logits, labels }
    }
}
