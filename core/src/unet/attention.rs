//! diffusers `Attention` as the UNet's transformer blocks use it (self- or cross-attention,
//! no q/k/v bias), with its processor chosen from a closed set instead of monkey-patching:
//! `None` is diffusers' default processor, [`AttnProcessor::Lora`] adds LoRA deltas to
//! q/k/v/out, and [`AttnProcessor::IpLora`] also attends separately to the last context tokens
//! (IP-Adapter's decoupled cross-attention), as ConsistentID's `Consistent_AttProcessor` and
//! `Consistent_IPAttProcessor` do.

use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::nn::attention::{multi_head_attention, multi_head_attention_with_probs};
use crate::nn::lora::LoraLinear;

/// Collects the attention probabilities of the layers it is attached to, by layer path, as
/// training's localization loss reads them (the official code patches
/// `Attention.get_attention_scores` to the same end). Attached to an `attn1` it holds the
/// self-attention probabilities; to an `attn2`, those of the text branch (before the image
/// branch is added).
#[derive(Clone, Debug, Default)]
pub struct AttentionProbe {
    taken: Arc<Mutex<Vec<(String, Tensor<4>)>>>,
}

impl AttentionProbe {
    fn record(&self, path: &str, probs: Tensor<4>) {
        if let Ok(mut taken) = self.taken.lock() {
            taken.push((path.to_string(), probs));
        }
    }

    /// What was recorded since the last call, in call order: `(layer path, [b, heads, n, m])`.
    pub fn take(&self) -> Vec<(String, Tensor<4>)> {
        self.taken
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

/// `Attention(query_dim, cross_attention_dim, heads, dim_head)`; `to_out.0` upstream is `to_out`.
#[derive(Module, Debug)]
pub struct Attention {
    pub to_q: Linear,
    pub to_k: Linear,
    pub to_v: Linear,
    pub to_out: Linear,
    /// The installed processor; `None` is the default one.
    pub processor: Option<AttnProcessor>,
    #[module(skip)]
    pub heads: usize,
    /// Where this layer's probabilities go, with its path, when training hooks it.
    #[module(skip)]
    pub probe: Option<(String, AttentionProbe)>,
}

/// The attention processors this port knows.
// One value per attention module and both variants are in use at once, so boxing the larger
// one would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AttnProcessor {
    /// LoRA on q/k/v/out (ConsistentID's self-attention processor).
    Lora(LoraProcessor),
    /// LoRA plus decoupled attention over the last `num_tokens` context tokens.
    IpLora(IpLoraProcessor),
}

/// LoRA deltas for the four projections.
#[derive(Module, Debug)]
pub struct LoraProcessor {
    pub to_q_lora: LoraLinear,
    pub to_k_lora: LoraLinear,
    pub to_v_lora: LoraLinear,
    pub to_out_lora: LoraLinear,
}

/// LoRA deltas plus the image branch's own key/value projections.
#[derive(Module, Debug)]
pub struct IpLoraProcessor {
    pub lora: LoraProcessor,
    pub to_k_ip: Linear,
    pub to_v_ip: Linear,
    /// How many trailing context tokens are image tokens.
    #[module(skip)]
    pub num_tokens: usize,
    /// Weight of the image branch.
    #[module(skip)]
    pub scale: f64,
}

impl LoraProcessor {
    fn new(query_dim: usize, kv_dim: usize, inner: usize, rank: usize, device: &Device) -> Self {
        Self {
            to_q_lora: LoraLinear::new(query_dim, inner, rank, device),
            to_k_lora: LoraLinear::new(kv_dim, inner, rank, device),
            to_v_lora: LoraLinear::new(kv_dim, inner, rank, device),
            to_out_lora: LoraLinear::new(inner, query_dim, rank, device),
        }
    }
}

impl Attention {
    /// `context_dim` is the width of the keys/values' source (`None`: self-attention).
    pub fn new(
        query_dim: usize,
        context_dim: Option<usize>,
        heads: usize,
        dim_head: usize,
        device: &Device,
    ) -> Self {
        let inner = heads * dim_head;
        let kv = context_dim.unwrap_or(query_dim);
        let no_bias = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        Self {
            to_q: no_bias(query_dim, inner),
            to_k: no_bias(kv, inner),
            to_v: no_bias(kv, inner),
            to_out: LinearConfig::new(inner, query_dim).init(device),
            processor: None,
            heads,
            probe: None,
        }
    }

    fn dims(&self) -> (usize, usize, usize) {
        let [query_dim, inner] = self.to_q.weight.dims();
        (query_dim, self.to_k.weight.dims()[0], inner)
    }

    /// Installs a LoRA processor of `rank` (weights to be loaded).
    pub fn install_lora(&mut self, rank: usize, device: &Device) {
        let (q, kv, inner) = self.dims();
        self.processor = Some(AttnProcessor::Lora(LoraProcessor::new(
            q, kv, inner, rank, device,
        )));
    }

    /// Installs a LoRA + IP-Adapter processor: the last `num_tokens` context tokens go
    /// through `to_k_ip`/`to_v_ip`, their attention added with `scale`.
    pub fn install_ip_lora(&mut self, rank: usize, num_tokens: usize, scale: f64, device: &Device) {
        let (q, kv, inner) = self.dims();
        let no_bias = |i, o| LinearConfig::new(i, o).with_bias(false).init(device);
        self.processor = Some(AttnProcessor::IpLora(IpLoraProcessor {
            lora: LoraProcessor::new(q, kv, inner, rank, device),
            to_k_ip: no_bias(kv, inner),
            to_v_ip: no_bias(kv, inner),
            num_tokens,
            scale,
        }));
    }

    /// # Shapes
    /// - `x`: `[b, n, query_dim]`, `context`: `[b, m, context_dim]` (or `None` for self-attention)
    ///   → `[b, n, query_dim]`
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        let context = context.unwrap_or_else(|| x.clone());
        match &self.processor {
            None => {
                let q = self.to_q.forward(x);
                let k = self.to_k.forward(context.clone());
                let v = self.to_v.forward(context);
                self.to_out.forward(self.attend(q, k, v))
            }
            Some(AttnProcessor::Lora(lora)) => {
                let q = self.to_q.forward(x.clone()) + lora.to_q_lora.forward(x);
                let a = self.lora_attention(lora, q, context);
                self.to_out.forward(a.clone()) + lora.to_out_lora.forward(a)
            }
            Some(AttnProcessor::IpLora(ip)) => {
                let [b, m, d] = context.dims();
                let n_text = m.saturating_sub(ip.num_tokens);
                // [b, m, d] -> text tokens [b, m - N, d] and image tokens [b, N, d]
                let text = context.clone().slice([0..b, 0..n_text, 0..d]);
                let image = context.slice([0..b, n_text..m, 0..d]);
                let q = self.to_q.forward(x.clone()) + ip.lora.to_q_lora.forward(x);
                let a_text = self.lora_attention(&ip.lora, q.clone(), text);
                let a_ip = multi_head_attention(
                    q,
                    ip.to_k_ip.forward(image.clone()),
                    ip.to_v_ip.forward(image),
                    self.heads,
                );
                let a = a_text + a_ip * ip.scale;
                self.to_out.forward(a.clone()) + ip.lora.to_out_lora.forward(a)
            }
        }
    }

    /// Attention of the (LoRA-adjusted) queries `q` over LoRA-adjusted keys/values of `context`,
    /// before the output projection.
    fn lora_attention(&self, lora: &LoraProcessor, q: Tensor<3>, context: Tensor<3>) -> Tensor<3> {
        let k = self.to_k.forward(context.clone()) + lora.to_k_lora.forward(context.clone());
        let v = self.to_v.forward(context.clone()) + lora.to_v_lora.forward(context);
        self.attend(q, k, v)
    }

    /// The attention over projected q/k/v, its probabilities recorded when probed.
    fn attend(&self, q: Tensor<3>, k: Tensor<3>, v: Tensor<3>) -> Tensor<3> {
        match &self.probe {
            None => multi_head_attention(q, k, v, self.heads),
            Some((path, probe)) => {
                let (out, probs) = multi_head_attention_with_probs(q, k, v, self.heads);
                probe.record(path, probs);
                out
            }
        }
    }
}
