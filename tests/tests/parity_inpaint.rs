//! Inpainting against the OFFICIAL `StableDiffusionInpaintConsistentIDPipeline` run on a tiny
//! random replica (tests/scripts/gen_inpaint_pipeline.py): a 4-channel UNet (latents outside
//! the mask reset after each step) and a 9-channel inpainting UNet (mask and masked photo as
//! input), each at strength 1.0 (pure noise) and 0.6 (the last 3 of 5 steps from the noised
//! photo), one DDIM case, and the official ControlNet-inpainting pipeline with both UNets
//! (Canny control image, scale and guidance window); the official draws injected. The prepared latents and the image
//! ≤ 1e-4 relative L2 (measured ≤ 1.3e-6 for the images).

#[path = "photo/controlnet.rs"]
mod controlnet;

use burn::tensor::{DType, Device, Tensor};
use consistentid_core::consistentid::prompt::PHOTO_FACIAL_CAPTION;
use consistentid_core::controlnet::ControlNetModel;
use consistentid_core::image::canny::canny_image;
use consistentid_core::pipeline::consistentid::ConsistentIdPipeline;
use consistentid_core::pipeline::denoise::Conditions;
use consistentid_core::pipeline::photo::{Control, PhotoDraw, PhotoInput, control_image};
use consistentid_core::pipeline::{DenoiseLoop, StableDiffusion, StepObserver};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, copy_dir, fixture, real_data, tiny_model_folder};

struct Quiet;

impl StepObserver for Quiet {
    fn after_step(&mut self, _: usize, _: usize) -> bool {
        true
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// A ControlNet's (scale, start, end).
type ControlSettings = Option<(f64, f64, f64)>;

fn case(
    name: &str,
    nine_channels: bool,
    scheduler: SchedulerKind,
    strength: f64,
    control: ControlSettings,
) {
    let dir = tiny_model_folder("inpaint_pipeline/ConsistentID-v1.bin");
    if nine_channels {
        std::fs::remove_dir_all(dir.path().join("unet")).unwrap();
        copy_dir(&fixture("inpaint_pipeline/unet9"), &dir.path().join("unet"));
    }
    let device = Device::flex();
    let pipe =
        ConsistentIdPipeline::load(&DirSource::open(dir.path()).unwrap(), DType::F32, &device)
            .unwrap();
    let bytes = std::fs::read(fixture("inpaint_pipeline/expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let read =
        |rel: &std::path::Path, name: &str| decode(&std::fs::read(rel).unwrap(), name).unwrap();
    let face = read(&real_data("images/astronaut.png"), "astronaut.png");
    let mask = read(&fixture("inpaint_pipeline/mask.png"), "mask.png");

    let id = want.tensor::<2>("id_embedding", &device).unwrap();
    let regions = pipe.parse_regions(&face).unwrap();
    let prepared = pipe
        .prepare_with_regions(
            &face,
            &regions,
            id,
            "a photo of a person as an astronaut, highly detailed",
            Some("blurry, lowres"),
            PHOTO_FACIAL_CAPTION,
        )
        .unwrap();
    let input = PhotoInput {
        image: face.clone(),
        mask: Some(mask),
        strength,
    };
    pipe.sd.check_photo(&input, 5).unwrap();
    let key = |k: &str| format!("{name}.{k}");
    let mut asked = Vec::new();
    let photo = pipe
        .sd
        .photo_latents(&input, 48, 64, &mut |what, shape| {
            asked.push(what);
            let k = match what {
                PhotoDraw::Image => key("image_noise"),
                PhotoDraw::MaskedImage => key("masked_noise"),
            };
            let t = want.tensor::<4>(&k, &device).unwrap();
            assert_eq!(t.dims(), shape, "{k}");
            t
        })
        .unwrap();
    // Drawn where (and in the order) the official pipeline draws.
    let mut official = Vec::new();
    if want.names().contains(&key("image_noise")) {
        official.push(PhotoDraw::Image);
    }
    if nine_channels {
        official.push(PhotoDraw::MaskedImage);
    }
    assert_eq!(asked, official, "{name}: the VAE samples drawn");
    let mask = photo.mask.clone().unwrap();
    assert_eq!(
        values(mask),
        want.f32(&key("mask")).unwrap().0,
        "{name}: mask"
    );
    // (diffusers returns them only for a 4-channel UNet.)
    if let Some(image) = photo.image.as_ref().filter(|_| !nine_channels) {
        let official = want.f32(&key("image_latents")).unwrap().0;
        assert_close(&key("image_latents"), &values(image.clone()), &official);
    }
    if let Some(masked) = &photo.masked_image {
        let official = want.f32(&key("masked_image_latents")).unwrap().0;
        assert_close(
            &key("masked_image_latents"),
            &values(masked.clone()),
            &official,
        );
    }

    let spec = DenoiseLoop {
        scheduler,
        steps: 5,
        guidance_scale: 7.5,
    };
    // The script's STEPS, MERGE and the official default guidance.
    let merge = 1;
    let c = &prepared.conditioning;
    let net = control.map(|_| {
        let source = DirSource::open(fixture("controlnet_tiny")).unwrap();
        ControlNetModel::load(&source, "controlnet", None, DType::F32, &device).unwrap()
    });
    let controls: Vec<Control> = match (&net, control) {
        (Some(net), Some((scale, start, end))) => vec![Control {
            net,
            image: control_image(&canny_image(&face, 100.0, 200.0), 48, 64, &device),
            scale,
            start,
            end,
        }],
        _ => Vec::new(),
    };
    let latents = pipe
        .sd
        .denoise_batch(
            &spec,
            &Conditions {
                context_at: &|k| c.at_step(k, merge),
                photo: Some(&photo),
                controls: &controls,
            },
            want.tensor::<4>(&key("noise"), &device).unwrap(),
            &mut [NoiseRng::new(0)],
            &mut Quiet,
        )
        .unwrap();
    let image = values(pipe.sd.decode(latents));
    assert_close(&key("image"), &image, &want.f32(&key("image")).unwrap().0);
}

#[test]
fn four_channel_unet_from_pure_noise() {
    case("unet4_s1", false, SchedulerKind::Euler, 1.0, None);
}

#[test]
fn four_channel_unet_from_the_noised_photo() {
    case("unet4_s06", false, SchedulerKind::Euler, 0.6, None);
}

#[test]
fn inpainting_unet_from_pure_noise() {
    case("unet9_s1", true, SchedulerKind::Euler, 1.0, None);
}

#[test]
fn inpainting_unet_from_the_noised_photo() {
    case("unet9_s06", true, SchedulerKind::Euler, 0.6, None);
}

#[test]
fn ddim_from_the_noised_photo() {
    case("unet4_s06_ddim", false, SchedulerKind::Ddim, 0.6, None);
}

/// The official ControlNet-inpainting pipeline with the Canny edges of the face: a 4-channel
/// UNet from pure noise, the ControlNet at scale 0.5 for the first 60 % of the steps.
#[test]
fn controlnet_inpainting_four_channels() {
    case(
        "control_unet4_s1",
        false,
        SchedulerKind::Euler,
        1.0,
        Some((0.5, 0.0, 0.6)),
    );
}

/// The same with the inpainting UNet at strength 0.6 and the ControlNet (scale 0.8) from 20 %.
#[test]
fn controlnet_inpainting_nine_channels() {
    case(
        "control_unet9_s06",
        true,
        SchedulerKind::Euler,
        0.6,
        Some((0.8, 0.2, 1.0)),
    );
}

/// Image-to-image (no mask) against diffusers' own `StableDiffusionImg2ImgPipeline` on plain
/// sd_tiny at strength 0.6: the photo noised to the 3rd of 5 steps, then denoised.
#[test]
fn image_to_image_equals_diffusers() {
    let device = Device::flex();
    let sd = StableDiffusion::load(
        &DirSource::open(fixture("sd_tiny")).unwrap(),
        None,
        DType::F32,
        &device,
    )
    .unwrap();
    let bytes = std::fs::read(fixture("inpaint_pipeline/expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let face = decode(
        &std::fs::read(real_data("images/astronaut.png")).unwrap(),
        "astronaut.png",
    )
    .unwrap();
    let input = PhotoInput {
        image: face,
        mask: None,
        strength: 0.6,
    };
    sd.check_photo(&input, 5).unwrap();
    let photo = sd
        .photo_latents(&input, 48, 64, &mut |what, _| {
            assert_eq!(what, PhotoDraw::Image);
            want.tensor::<4>("img2img.image_noise", &device).unwrap()
        })
        .unwrap();
    let context = sd
        .encode_prompt(
            "a photo of a person as an astronaut, highly detailed",
            Some("blurry, lowres"),
        )
        .unwrap();
    let spec = DenoiseLoop {
        scheduler: SchedulerKind::Euler,
        steps: 5,
        guidance_scale: 7.5,
    };
    let latents = sd
        .denoise_batch(
            &spec,
            &Conditions {
                context_at: &|_| context.clone(),
                photo: Some(&photo),
                controls: &[],
            },
            want.tensor::<4>("img2img.noise", &device).unwrap(),
            &mut [NoiseRng::new(0)],
            &mut Quiet,
        )
        .unwrap();
    let image = values(sd.decode(latents));
    assert_close(
        "img2img image",
        &image,
        &want.f32("img2img.image").unwrap().0,
    );
}
