//! The ConsistentID denoising loop (merge-step switching, CFG, Euler, decode) against the
//! reference loop of tests/scripts/gen_consistentid_merge.py on a UNet with ConsistentID's
//! processors.

use burn::tensor::{DType, Device};
use consistentid_core::consistentid::conditioning::Conditioning;
use consistentid_core::pipeline::consistentid::generate;
use consistentid_core::pipeline::{DenoiseLoop, StableDiffusion};
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, rel_l2};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn merge_step_loop_matches_the_reference() {
    // sd_tiny's tokenizer, text encoder, VAE and scheduler with unet_tiny_ip's UNet.
    let tmp = tempfile::tempdir().unwrap();
    for part in ["tokenizer", "text_encoder", "vae", "scheduler"] {
        copy_dir(&fixture("sd_tiny").join(part), &tmp.path().join(part));
    }
    copy_dir(&fixture("unet_tiny_ip/unet"), &tmp.path().join("unet"));
    let device = Device::flex();
    let mut sd = StableDiffusion::load(
        &DirSource::open(tmp.path()).unwrap(),
        None,
        DType::F32,
        &device,
    )
    .unwrap();
    let adapters = DirSource::open(fixture("unet_tiny_ip")).unwrap();
    sd.unet
        .load_ip_lora_adapters(
            &adapters,
            "adapter.safetensors",
            4,
            0.7,
            DType::F32,
            &device,
        )
        .unwrap();

    let bytes = std::fs::read(fixture("consistentid_merge.safetensors")).unwrap();
    let want = TensorFile::parse("merge", &bytes).unwrap();
    for k in 0..3 {
        let t3 = |n: &str| want.tensor::<3>(&format!("{k}.{n}"), &device).unwrap();
        let conditioning = Conditioning {
            null: t3("null"),
            augmented: t3("augmented"),
            text_only: t3("text_only"),
        };
        let merge = want.i64(&format!("{k}.merge_step")).unwrap().0[0] as usize;
        let spec = DenoiseLoop {
            scheduler: SchedulerKind::Euler,
            steps: 6,
            guidance_scale: 5.0,
        };
        let init = want
            .tensor::<4>(&format!("{k}.init_latents"), &device)
            .unwrap();
        let image = generate(
            &sd,
            &conditioning,
            &spec,
            merge,
            init,
            &mut NoiseRng::new(0),
            &mut |_, _| {},
        )
        .unwrap();
        let got = image.into_data().try_to_vec::<f32>().unwrap();
        let err = rel_l2(&got, &want.f32(&format!("{k}.image")).unwrap().0);
        assert!(err <= 1e-3, "case {k} (merge {merge}): relative L2 {err:e}");
    }
}
