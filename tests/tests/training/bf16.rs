//! The official precision recipe (`train --precision bf16`, the default) against the official
//! trainer run as accelerate's `--mixed_precision=bf16` runs it: frozen UNet and ProjPlus cast
//! to bf16, the FacialEncoder and processors f32, the forward under
//! `torch.autocast("cpu", bfloat16)`, bf16 latents, noise and encoder outputs
//! (tests/scripts/gen_train_step.py, cases `bf16` and `adamw_bf16`).
//!
//! Tolerances: ProjPlus' pure-bf16 AdamW is torch's bit for bit in the parameters (exp_avg_sq
//! may differ in at most 1 element in 1,000, by under one bf16 ulp). Over three training steps
//! our forward is f32 where the official computes its matmuls in bf16 (burn has no autocast), so
//! the prediction differs by about 1 % of its range, the noise loss by 2e-4 relative, L_loc by
//! 2e-4 absolute, and where a gradient near zero changes sign a step goes the other way: every
//! ProjPlus value is a bf16 value, at least 95 % of ProjPlus' values equal the official's
//! exactly (measured 97.2 %; the f32 recipe matches none), the rest and the f32
//! tensors lie within 5 learning rates.

use std::collections::HashMap;

use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::Device;
use consistentid_core::scheduler::{ForwardProcess, SchedulerConfig};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::attention::AttentionProbe;
use consistentid_tests::fixture;
use consistentid_tests::train::{assert_scalar, assert_tensor, inputs, network, values};
use consistentid_train::localization::{LocVariant, hooked};
use consistentid_train::network::{HostTensor, Network, TrainAdapter};
use consistentid_train::optimizer::{LEARNING_RATE, for_precision};
use consistentid_train::precision::{Bf16AdamW, Precision, round_network};
use consistentid_train::step;

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture("train_step").join(name)).unwrap()
}

fn is_bf16(v: f32) -> bool {
    half::bf16::from_f32(v).to_f32() == v
}

#[test]
fn pure_bf16_adamw_equals_torch() {
    let device = Device::flex();
    let bytes = read("adamw_bf16.safetensors");
    let file = TensorFile::parse("adamw_bf16", &bytes).unwrap();
    let optim = Bf16AdamW {
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: 1e-2,
    };
    let mut param = file.tensor::<1>("param", &device).unwrap();
    let mut state = None;
    for s in 0..6 {
        let grad = file.tensor::<1>(&format!("{s}.grad"), &device).unwrap();
        let (p, st) = optim.step(LEARNING_RATE, param, grad, state);
        let st = st.unwrap();
        let want = |n: &str| file.f32(&format!("{s}.{n}")).unwrap().0;
        assert_eq!(values(p.clone()), want("param"), "step {s}: parameters");
        assert_eq!(
            values(st.momentum.moment_1.clone()),
            want("exp_avg"),
            "step {s}: exp_avg"
        );
        let ours = values(st.momentum.moment_2.clone());
        let torch = want("exp_avg_sq");
        let off: Vec<(f32, f32)> = ours
            .iter()
            .zip(&torch)
            .filter(|(a, b)| a != b)
            .map(|(&a, &b)| (a, b))
            .collect();
        assert!(
            off.len() * 1000 <= ours.len()
                && off.iter().all(|(a, b)| (a - b).abs() <= b.abs() / 128.0),
            "step {s}: exp_avg_sq differs at {off:?}"
        );
        param = p;
        state = Some(st);
    }
}

/// Three official steps (masked noise loss, L_loc `code`) under `precision`: the network after
/// them, checking the losses and the first prediction on the way.
fn three_steps(file: &TensorFile, precision: Precision) -> Network {
    let device = Device::flex().autodiff();
    let config =
        std::fs::read_to_string(fixture("train_step").join("scheduler/scheduler_config.json"))
            .unwrap();
    let process =
        ForwardProcess::new(&SchedulerConfig::from_json("scheduler", &config).unwrap()).unwrap();
    let mut net = network(&device, false, TrainAdapter::All);
    if precision == Precision::Bf16 {
        net = round_network(net);
    }
    let probe = AttentionProbe::default();
    net.unet
        .attach_probe(&probe, |p| hooked(p, LocVariant::Code, 5));
    let mut optim = for_precision(precision);
    for s in 0..3 {
        let what = format!("{precision:?} step {s}");
        let batch = inputs(file, s, true, &device);
        let out = step::forward(&net, &process, &probe, &batch, 0.01).unwrap();
        let scalar = |n: &str| file.f32(&format!("{s}.{n}")).unwrap().0[0];
        let noise = values(out.noise_loss.clone())[0];
        assert_scalar(
            &format!("{what} noise loss"),
            noise,
            scalar("predict_loss"),
            1e-3,
            0.0,
        );
        let loc = out.localization.clone().map_or(0.0, |l| values(l)[0]);
        assert_scalar(&format!("{what} L_loc"), loc, scalar("loc_loss"), 0.0, 5e-4);
        if s == 0 {
            let [_, _, h, w] = out.prediction.dims();
            let fg = batch.foreground.as_ref().unwrap().at_latent(h, w, &device);
            let want = file.f32("0.pred").unwrap().0;
            assert_tensor(
                &format!("{what} prediction"),
                &values(out.prediction.clone() * fg),
                &want,
                3e-2,
            );
        }
        let grads = GradientsParams::from_grads(out.total.backward(), &net);
        net = optim.step(LEARNING_RATE, net, grads);
    }
    net
}

#[test]
fn official_bf16_recipe_three_steps() {
    let bytes = read("bf16.safetensors");
    let file = TensorFile::parse("bf16", &bytes).unwrap();
    let finals: Vec<(String, Vec<f32>)> = file
        .names()
        .into_iter()
        .filter_map(|n| {
            let key = n.strip_prefix("final.")?.to_string();
            Some((key, file.f32(&n).unwrap().0))
        })
        .collect();
    let slack = 5.0 * LEARNING_RATE as f32;
    for precision in [Precision::Bf16, Precision::F32] {
        let net = three_steps(&file, precision);
        let ours: HashMap<String, HostTensor> = net.release_parameters().into_iter().collect();
        assert_eq!(ours.len(), finals.len(), "{precision:?}: released tensors");
        let (mut exact, mut total) = (0usize, 0usize);
        for (key, want) in &finals {
            let got = &ours[key].data;
            let far = got
                .iter()
                .zip(want)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            if precision == Precision::Bf16 {
                assert!(far <= slack, "{key}: off by {far:e}");
            }
            if key.starts_with("image_proj.") {
                exact += got.iter().zip(want).filter(|(a, b)| a == b).count();
                total += got.len();
                if precision == Precision::Bf16 {
                    assert!(got.iter().all(|&v| is_bf16(v)), "{key}: not bf16 values");
                }
            }
        }
        let share = exact as f64 / total as f64;
        eprintln!("{precision:?}: {exact} of ProjPlus' {total} values equal the official's");
        match precision {
            Precision::Bf16 => assert!(share >= 0.95, "ProjPlus exact: {share}"),
            // The check tells the recipes apart.
            Precision::F32 => assert!(share < 0.05, "f32 recipe exact: {share}"),
        }
    }
}
