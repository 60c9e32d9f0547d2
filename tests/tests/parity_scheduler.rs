//! Schedulers against diffusers 0.23 (fixtures from `tests/scripts/gen_schedulers.py`): exact
//! timestep lists, sigma tables and init_noise_sigma to f32 precision, and whole denoising loops
//! with a stand-in model (output = 0.3 * scaled input + a fixed tensor per step) and injected
//! ancestral noise: final sample within relative L2 1e-4, plus its sum and mean.

use burn::tensor::{Device, Tensor, TensorData};
use consistentid_core::scheduler::{Scheduler, SchedulerConfig, SchedulerKind};
use consistentid_core::tensor_io::TensorFile;
use consistentid_tests::{assert_close, fixture};

fn slice(values: &[f32], shape: &[usize], index: usize, device: &Device) -> Tensor<4> {
    let per: usize = shape[1..].iter().product();
    let part = values[index * per..(index + 1) * per].to_vec();
    Tensor::from_data(TensorData::new(part, shape[1..].to_vec()), device)
}

#[test]
fn schedulers_match_diffusers() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("schedulers.json")).unwrap())
            .unwrap();
    let bytes = std::fs::read(fixture("schedulers.safetensors")).unwrap();
    let file = TensorFile::parse("schedulers", &bytes).unwrap();
    let device = Device::flex();
    let cases = meta["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let kind = SchedulerKind::from_name(case["kind"].as_str().unwrap()).unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let config_json = meta["configs"][case["config"].as_str().unwrap()].to_string();
        let config = SchedulerConfig::from_json("scheduler_config.json", &config_json).unwrap();
        let mut scheduler = Scheduler::new(kind, &config, steps).unwrap();

        let (want_t, _) = file.f64(&format!("{key}.timesteps")).unwrap();
        assert_eq!(scheduler.timesteps(), want_t.as_slice(), "{key}: timesteps");
        if let Ok((want_s, _)) = file.f64(&format!("{key}.sigmas")) {
            assert_eq!(scheduler.sigmas().len(), want_s.len(), "{key}: sigma count");
            for (i, (a, b)) in scheduler.sigmas().iter().zip(&want_s).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-6 * b.abs().max(1e-3),
                    "{key}: sigma {i}: {a} vs {b}"
                );
            }
        }
        let (want_init, _) = file.f64(&format!("{key}.init_noise_sigma")).unwrap();
        let init = scheduler.init_noise_sigma();
        assert!(
            (init - want_init[0]).abs() <= 2e-6 * want_init[0],
            "{key}: init_noise_sigma {init} vs {}",
            want_init[0]
        );

        let (x_init, shape) = file.f32(&format!("{key}.x_init")).unwrap();
        let mut x = Tensor::<4>::from_data(TensorData::new(x_init, shape), &device);
        let (consts, cshape) = file.f32(&format!("{key}.consts")).unwrap();
        let (noise, _) = file.f32(&format!("{key}.noise")).unwrap();
        for i in 0..steps {
            let input = scheduler.scale_model_input(x.clone(), i);
            let out = input * 0.3 + slice(&consts, &cshape, i, &device);
            let n = kind
                .needs_noise()
                .then(|| slice(&noise, &cshape, i, &device));
            x = scheduler.step(out, i, x, n);
        }
        let (want, _) = file.f32(&format!("{key}.x_final")).unwrap();
        let got = x.into_data().try_to_vec::<f32>().unwrap();
        assert_close(key, &got, &want);
        let (gs, ws) = (got.iter().sum::<f32>(), want.iter().sum::<f32>());
        assert!(
            (gs - ws).abs() <= 1e-3 * ws.abs().max(1.0),
            "{key}: sum {gs} vs {ws}"
        );
    }
}

#[test]
fn unknown_or_unsupported_settings_are_errors() {
    assert!(SchedulerKind::from_name("pndm").is_none());
    let config = SchedulerConfig::from_json("c", r#"{"thresholding": true}"#).unwrap();
    assert!(Scheduler::new(SchedulerKind::Ddim, &config, 10).is_err());
    let config = SchedulerConfig::from_json("c", "{}").unwrap();
    assert!(Scheduler::new(SchedulerKind::Euler, &config, 0).is_err());
    assert!(Scheduler::new(SchedulerKind::Euler, &config, 5000).is_err());
    assert!(SchedulerConfig::from_json("c", r#"{"beta_schedule": "nope"}"#).is_err());
}
