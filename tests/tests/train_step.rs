//! The trainer against the official ConsistentID training code (tests/scripts/gen_train_step.py
//! runs the official `ConsistentID.forward`, its L_loc hooks and its AdamW on a tiny random
//! replica): loss parts, the prediction, every trained tensor's gradient and the parameters after
//! the steps, for the `code` and `paper` localization variants, the official initialisation
//! (LoRA `up` = 0), a step whose text was dropped (no facial tokens: zero, not absent,
//! gradients) and the frozen-adapter recipe. CPU, f32, `Device::flex().autodiff()`.
//!
//! Tolerances: losses relative 1e-5 (L_loc, a difference of small averages, absolute 1e-7);
//! tensors relative to their largest magnitude, 1e-4 for the prediction, gradients and Adam
//! moments (after each step, for one tensor of each kind), and 1e-5 for parameters plus 1 % of
//! the learning rate absolute (see `run`).

#[path = "training/bf16.rs"]
mod bf16;

use std::collections::HashMap;

use std::sync::{Arc, Mutex};

use burn::optim::{AdamW, AdamWState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{Device, Tensor};
use consistentid_core::consistentid::ConsistentIdModules;
use consistentid_core::scheduler::{ForwardProcess, SchedulerConfig};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::attention::AttentionProbe;
use consistentid_tests::fixture;
use consistentid_tests::train::{
    assert_named, assert_scalar, assert_tensor, assert_tensor_abs, inputs, network, values,
};
use consistentid_train::localization::{FacialTargets, LocVariant, hooked};
use consistentid_train::network::{HostTensor, Network, TrainAdapter};
use consistentid_train::optimizer::{LEARNING_RATE, adamw};
use consistentid_train::step;

const LOC_WEIGHT: f64 = 0.01;

/// What one parameter's AdamW step gave: the new value and both moments (torch's layout).
type Stepped = (HostTensor, HostTensor, HostTensor);

/// burn's AdamW, keeping each step's result so that the moments can be compared with torch's.
#[derive(Clone)]
struct Recording {
    inner: AdamW,
    log: Arc<Mutex<Vec<Stepped>>>,
}

fn torch_layout<const D: usize>(t: Tensor<D>) -> HostTensor {
    let t = if D == 2 { t.swap_dims(0, 1) } else { t };
    HostTensor {
        shape: t.dims().to_vec(),
        data: values(t),
    }
}

impl Optimizer for Recording {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (tensor, state) = self.inner.step(lr, tensor, grad, state);
        if let Some(s) = &state {
            self.log.lock().unwrap().push((
                torch_layout(tensor.clone()),
                torch_layout(s.momentum.moment_1.clone()),
                torch_layout(s.momentum.moment_2.clone()),
            ));
        }
        (tensor, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// The case file's parameter, exp_avg and exp_avg_sq after step `s` for the tensors it tracks
/// (one of each kind), against the step's log (a parameter is found by its new value).
fn assert_moments(what: &str, file: &TensorFile, s: usize, net: &Network, log: &[Stepped]) {
    let prefix = format!("{s}.exp_avg.");
    let tracked: Vec<String> = file
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
        .collect();
    if tracked.is_empty() {
        return;
    }
    let params: HashMap<String, HostTensor> = net.release_parameters().into_iter().collect();
    for key in &tracked {
        let value = &params[key];
        let (_, m, v) = log
            .iter()
            .find(|(p, _, _)| p == value)
            .unwrap_or_else(|| panic!("{what}: {key} took no step"));
        let want = |n: &str| file.f32(&format!("{s}.{n}.{key}")).unwrap().0;
        // As the final parameters below: 1 % of a step's move absolute on top.
        let (param, slack) = (want("param"), 1e-2 * LEARNING_RATE);
        assert_tensor_abs(&format!("{what} {key}"), &value.data, &param, 1e-5, slack);
        assert_tensor(
            &format!("{what} {key} exp_avg"),
            &m.data,
            &want("exp_avg"),
            1e-4,
        );
        assert_tensor(
            &format!("{what} {key} exp_avg_sq"),
            &v.data,
            &want("exp_avg_sq"),
            1e-4,
        );
    }
}

struct Case {
    name: &'static str,
    coin: bool,
    zero_up: bool,
    variant: LocVariant,
    adapter: TrainAdapter,
    steps: usize,
    grads_at: &'static [usize],
    final_params: bool,
}

fn run(case: Case) {
    let device = Device::flex().autodiff();
    let dir = fixture("train_step");
    let bytes = std::fs::read(dir.join(format!("{}.safetensors", case.name))).unwrap();
    let file = TensorFile::parse(case.name, &bytes).unwrap();
    let config = std::fs::read_to_string(dir.join("scheduler/scheduler_config.json")).unwrap();
    let process =
        ForwardProcess::new(&SchedulerConfig::from_json("scheduler", &config).unwrap()).unwrap();
    let mut net = network(&device, case.zero_up, case.adapter);
    let probe = AttentionProbe::default();
    let layers = net
        .unet
        .attach_probe(&probe, |p| hooked(p, case.variant, 5));
    let attn = if case.variant == LocVariant::Paper {
        "attn2"
    } else {
        "attn1"
    };
    let want: Vec<String> = [
        "down_blocks.1.attentions.0",
        "up_blocks.1.attentions.0",
        "up_blocks.1.attentions.1",
        "mid_block.attentions.0",
    ]
    .iter()
    .map(|p| format!("{p}.transformer_blocks.0.{attn}"))
    .collect();
    assert_eq!(layers, want, "{}: hooked layers", case.name);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut optim = ModuleOptimizer::from(Recording {
        inner: adamw().build(),
        log: log.clone(),
    });
    for s in 0..case.steps {
        let what = format!("{} step {s}", case.name);
        let batch = inputs(&file, s, case.coin, &device);
        let out = step::forward(&net, &process, &probe, &batch, LOC_WEIGHT).unwrap();
        if s == 0 {
            let pred = match &batch.foreground {
                Some(m) => {
                    let [_, _, h, w] = out.prediction.dims();
                    out.prediction.clone() * m.at_latent(h, w, &device)
                }
                None => out.prediction.clone(),
            };
            let (want, _) = file.f32("0.pred").unwrap();
            assert_tensor(&format!("{what} prediction"), &values(pred), &want, 1e-4);
        }
        let scalar = |n: &str| file.f32(&format!("{s}.{n}")).unwrap().0[0];
        assert_scalar(
            &format!("{what} noise loss"),
            values(out.noise_loss.clone())[0],
            scalar("predict_loss"),
            1e-5,
            0.0,
        );
        let loc = out.localization.clone().map_or(0.0, |l| values(l)[0]);
        assert_scalar(
            &format!("{what} L_loc"),
            loc,
            scalar("loc_loss"),
            1e-5,
            1e-7,
        );
        let grads = out.total.backward();
        if case.grads_at.contains(&s) {
            let ours = net.release_gradients(&grads);
            assert_named(
                &format!("{what} gradient"),
                &ours,
                &file,
                &format!("{s}.grad."),
                (1e-4, 0.0),
            );
        }
        let grads = GradientsParams::from_grads(grads, &net);
        log.lock().unwrap().clear();
        net = optim.step(LEARNING_RATE, net, grads);
        assert_moments(&what, &file, s, &net, &log.lock().unwrap());
    }
    if case.final_params {
        assert_named(
            &format!("{} parameters after {} steps", case.name, case.steps),
            &net.release_parameters(),
            &file,
            "final.",
            // AdamW's first steps move an element by about lr·g/(|g| + ε): where |g| is near
            // ε = 1e-8 the gradient's own rounding shows, and grows over the steps, so 1 % of
            // one step's move (lr) absolute on top. The optimizer's own arithmetic (decay, ε)
            // is checked exactly in consistentid-train's unit test.
            (1e-5, 1e-2 * LEARNING_RATE),
        );
    }
}

#[test]
fn official_initialisation_three_steps_code_variant_masked_loss() {
    run(Case {
        name: "official",
        coin: true,
        zero_up: true,
        variant: LocVariant::Code,
        adapter: TrainAdapter::All,
        steps: 3,
        grads_at: &[0],
        final_params: true,
    });
}

#[test]
fn a_dropped_caption_gives_zero_gradients_to_the_fuse() {
    run(Case {
        name: "dropped",
        coin: false,
        zero_up: false,
        variant: LocVariant::Code,
        adapter: TrainAdapter::All,
        steps: 2,
        grads_at: &[1],
        final_params: false,
    });
}

#[test]
fn paper_variant_supervises_the_text_cross_attention() {
    run(Case {
        name: "paper",
        coin: false,
        zero_up: false,
        variant: LocVariant::Paper,
        adapter: TrainAdapter::All,
        steps: 1,
        grads_at: &[0],
        final_params: false,
    });
}

#[test]
fn frozen_adapter_moves_only_projection_and_encoder() {
    run(Case {
        name: "frozen_adapter",
        coin: true,
        zero_up: false,
        variant: LocVariant::Code,
        adapter: TrainAdapter::None,
        steps: 1,
        grads_at: &[],
        final_params: true,
    });
}

#[test]
fn a_facial_token_past_the_self_attention_keys_is_a_clear_error() {
    let device = Device::flex();
    let probs = Tensor::<4>::ones([1, 2, 100, 100], &device) / 100.0;
    let targets = FacialTargets {
        masks: vec![1.0; 40 * 40],
        batch: 1,
        slots: 1,
        height: 40,
        width: 40,
        token_index: vec![120],
        valid: vec![true],
    };
    let err = consistentid_train::localization::layer_loss(probs, &targets)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("position 120") && err.contains("--loc-variant paper"),
        "{err}"
    );
}

#[test]
fn the_release_export_loads_back_as_the_official_structure() {
    let device = Device::flex();
    let net = network(&device, false, TrainAdapter::All);
    let bytes = consistentid_train::export::release_bin(&net);
    let back = ConsistentIdModules::load(&bytes, "exported.bin", &device).unwrap();
    let again = Network {
        image_proj: back.image_proj,
        facial_encoder: back.facial_encoder,
        unet: net.unet.clone(),
    };
    let ours: HashMap<String, HostTensor> = net.release_parameters().into_iter().collect();
    let read: HashMap<String, HostTensor> = again.release_parameters().into_iter().collect();
    let init = std::fs::read(fixture("train_step").join("ConsistentID-init.bin")).unwrap();
    let adapters: HashMap<String, Vec<f32>> = consistentid_core::weights::torch_file::read(&bytes)
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.starts_with("adapter_modules."))
        .map(|(k, t)| (k, t.data))
        .collect();
    let official: HashMap<String, Vec<f32>> = consistentid_core::weights::torch_file::read(&init)
        .unwrap()
        .into_iter()
        .map(|(k, t)| (k, t.data))
        .collect();
    assert_eq!(
        ours.len(),
        official.len(),
        "every released tensor is exported"
    );
    for (key, t) in &ours {
        if key.starts_with("adapter_modules.") {
            assert_eq!(adapters[key], t.data, "{key}");
            continue;
        }
        let want: Vec<f32> = if key.starts_with("image_proj.") {
            // Saved in bf16, as released.
            t.data
                .iter()
                .map(|&v| half::bf16::from_f32(v).to_f32())
                .collect()
        } else {
            t.data.clone()
        };
        assert_eq!(read[key].data, want, "{key}");
        assert_eq!(
            official[key], t.data,
            "{key} equals the file it was loaded from"
        );
    }
}

/// Smoke: repeating one batch (fixed noise and timesteps) with a larger learning rate, the
/// total loss falls and L_loc (the code variant) decreases towards negative values.
#[test]
fn overfitting_one_batch_lowers_both_losses() {
    let device = Device::flex().autodiff();
    let dir = fixture("train_step");
    let bytes = std::fs::read(dir.join("official.safetensors")).unwrap();
    let file = TensorFile::parse("official", &bytes).unwrap();
    let config = std::fs::read_to_string(dir.join("scheduler/scheduler_config.json")).unwrap();
    let process =
        ForwardProcess::new(&SchedulerConfig::from_json("scheduler", &config).unwrap()).unwrap();
    let mut net = network(&device, false, TrainAdapter::All);
    let probe = AttentionProbe::default();
    net.unet
        .attach_probe(&probe, |p| hooked(p, LocVariant::Code, 5));
    let batch = inputs(&file, 0, false, &device);
    let mut optim = adamw().init();
    let mut seen = Vec::new();
    for _ in 0..40 {
        // A heavier L_loc weight so that the smoke shows its term move in few steps.
        let out = step::forward(&net, &process, &probe, &batch, 1.0).unwrap();
        seen.push((
            values(out.noise_loss.clone())[0],
            values(out.localization.clone().unwrap())[0],
        ));
        let grads = GradientsParams::from_grads(out.total.backward(), &net);
        net = optim.step(1e-3, net, grads);
    }
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    eprintln!("noise loss, L_loc: first {first:?}, last {last:?}");
    assert!(last.0 < 0.8 * first.0, "{seen:?}");
    assert!(last.1 < first.1 - 0.01 && last.1 < 0.0, "{seen:?}");
}

#[test]
fn training_from_scratch_starts_as_the_official_train_py() {
    let device = Device::flex().autodiff();
    let net = network(&device, false, TrainAdapter::All);
    let unet: HashMap<String, HostTensor> = net
        .parameters()
        .into_iter()
        .map(|(p, _, t)| (p, t))
        .collect();
    let attention = net.unet.attention_paths();
    let fresh = consistentid_train::init::from_scratch(net, 5).unwrap();
    let released: HashMap<String, HostTensor> = fresh.release_parameters().into_iter().collect();
    let mut seen = [0usize; 6];
    for (key, t) in &released {
        let n = t.data.len() as f64;
        let mean = t.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let sd = (t
            .data
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        if key.ends_with("_lora.up.weight") {
            assert!(
                t.data.iter().all(|&v| v == 0.0),
                "{key}: a fresh LoRA is a no-op"
            );
            seen[0] += 1;
        } else if key.ends_with("_lora.down.weight") {
            let want = 1.0 / t.shape[0] as f64;
            assert!(
                (sd / want - 1.0).abs() < 0.5,
                "{key}: sd {sd} vs 1/rank {want}"
            );
            seen[1] += 1;
        } else if key.ends_with("_ip.weight") {
            let i: usize = key.split('.').nth(1).unwrap().parse().unwrap();
            let which = if key.contains("to_k_ip") {
                "to_k"
            } else {
                "to_v"
            };
            let base = &unet[&format!("unet.{}.{which}.weight", attention[i])];
            let rounded: Vec<f32> = base
                .data
                .iter()
                .map(|&v| half::bf16::from_f32(v).to_f32())
                .collect();
            assert_eq!(t.data, rounded, "{key} copies the UNet's {which} in bf16");
            seen[2] += 1;
        } else if t.shape.len() == 2 {
            let bound = 1.0 / (t.shape[1] as f64).sqrt();
            assert!(
                t.data.iter().all(|&v| f64::from(v).abs() <= bound * 1.01),
                "{key}: U(±1/√in)"
            );
            if n > 200.0 {
                let want = bound / 3f64.sqrt();
                assert!((sd / want - 1.0).abs() < 0.2, "{key}: sd {sd} vs {want}");
            }
            seen[3] += 1;
        } else if key.ends_with(".latents") {
            seen[4] += 1;
        } else if t.shape.len() == 1 && key.ends_with(".weight") {
            assert!(
                t.data.iter().all(|&v| v == 1.0),
                "{key}: LayerNorm weight 1"
            );
            seen[5] += 1;
        }
        if key.starts_with("image_proj.") {
            assert!(
                t.data
                    .iter()
                    .all(|&v| half::bf16::from_f32(v).to_f32() == v),
                "{key} is bf16 as the official casts ProjPlus"
            );
        }
    }
    assert!(
        seen.iter().all(|&c| c > 0),
        "every kind of tensor met: {seen:?}"
    );
    // The same seed gives the same start; another seed another one.
    let again =
        consistentid_train::init::from_scratch(network(&device, false, TrainAdapter::All), 5)
            .unwrap()
            .release_parameters();
    let other =
        consistentid_train::init::from_scratch(network(&device, false, TrainAdapter::All), 6)
            .unwrap()
            .release_parameters();
    let key = "FacialEncoder.fuse_module.mlp1.fc1.weight";
    let get = |v: &[(String, HostTensor)]| v.iter().find(|(k, _)| k == key).unwrap().1.data.clone();
    assert_eq!(get(&again), released[key].data);
    assert_ne!(get(&other), released[key].data);
}
