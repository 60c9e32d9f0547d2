//! The whole txt2img loop against diffusers 0.23 `StableDiffusionPipeline` on a tiny
//! random-weight SD folder (fixture from `tests/scripts/gen_txt2img.py`), with injected initial
//! latents, for Euler and DDIM: image relative L2 error ≤ 1e-3.

use burn::tensor::{DType, Device};
use consistentid_core::clip::{ClipTextConfig, ClipTokenizer};
use consistentid_core::pipeline::{SingleFileConfigs, StableDiffusion, Txt2ImgRequest};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerConfig;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::unet::UNet2DConditionConfig;
use consistentid_core::vae::AutoencoderKLConfig;
use consistentid_core::weights::WeightSource;
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, rel_l2};

#[test]
fn euler_and_ddim_images_match_diffusers() {
    let source = DirSource::open(fixture("sd_tiny")).unwrap();
    let sd = StableDiffusion::load(&source, None, DType::F32, &Device::flex()).unwrap();
    check_images(&sd);
}

/// The same models from one LDM-layout single file (`gen_single_file.py`), with the folder's
/// configs and tokenizer: the same images.
#[test]
fn single_file_checkpoint_gives_the_same_images() {
    let device = Device::flex();
    let folder = DirSource::open(fixture("sd_tiny")).unwrap();
    let read = |p: &str| folder.read_string(p).unwrap();
    let configs = SingleFileConfigs {
        unet: UNet2DConditionConfig::from_json("unet", &read("unet/config.json")).unwrap(),
        vae: AutoencoderKLConfig::from_json("vae", &read("vae/config.json")).unwrap(),
        text_encoder: ClipTextConfig::from_json("text", &read("text_encoder/config.json")).unwrap(),
        scheduler: SchedulerConfig::from_json(
            "scheduler",
            &read("scheduler/scheduler_config.json"),
        )
        .unwrap(),
    };
    let tokenizer = ClipTokenizer::from_source(&folder, "tokenizer").unwrap();
    let fixtures = DirSource::open(fixture("")).unwrap();
    let sd = StableDiffusion::load_single_file(
        &fixtures,
        "sd_tiny_single_file.safetensors",
        tokenizer,
        &configs,
        DType::F32,
        &device,
    )
    .unwrap();
    check_images(&sd);
}

fn check_images(sd: &StableDiffusion) {
    let dir = fixture("sd_tiny");
    let device = sd.device.clone();
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let file = TensorFile::parse("expected", &bytes).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let request = Txt2ImgRequest {
            prompt: case["prompt"].as_str().unwrap().to_string(),
            negative_prompt: case["negative_prompt"].as_str().map(str::to_string),
            steps: case["steps"].as_u64().unwrap() as usize,
            guidance_scale: case["guidance"].as_f64().unwrap(),
            scheduler: SchedulerKind::from_name(case["scheduler"].as_str().unwrap()).unwrap(),
        };
        let init = file
            .tensor::<4>(&format!("{name}.init_latents"), &device)
            .unwrap();
        let image = sd
            .txt2img(&request, init, &mut NoiseRng::new(0), &mut |_, _| {})
            .unwrap();
        let (want, shape) = file.f32(&format!("{name}.image")).unwrap();
        assert_eq!(image.dims().to_vec(), shape, "{name}");
        let err = rel_l2(&image.into_data().try_to_vec::<f32>().unwrap(), &want);
        assert!(err <= 1e-3, "{name}: relative L2 error {err:e} > 1e-3");
    }
}
