//! The whole ConsistentID pipeline against the tiny replica of the official one
//! (tests/scripts/gen_consistentid_pipeline.py), stage by stage, with a provided ID embedding.

use burn::tensor::{DType, Device};
use consistentid_core::pipeline::DenoiseLoop;
use consistentid_core::pipeline::consistentid::ConsistentIdPipeline;
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::SchedulerKind;
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture, real_data, rel_l2, tiny_model_folder};

#[test]
fn pipeline_matches_the_replica_stage_by_stage() {
    let dir = tiny_model_folder("consistentid_pipeline/ConsistentID-v1.bin");
    let device = Device::flex();
    let pipe =
        ConsistentIdPipeline::load(&DirSource::open(dir.path()).unwrap(), DType::F32, &device)
            .unwrap();
    let bytes = std::fs::read(fixture("consistentid_pipeline/expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let face = decode(
        &std::fs::read(real_data("images/astronaut.png")).unwrap(),
        "astronaut.png",
    )
    .unwrap();
    let id = want.tensor::<2>("id_embedding", &device).unwrap();
    let prepared = pipe
        .prepare(
            &face,
            id,
            "a photo of a person as an astronaut, highly detailed",
            Some("blurry, lowres"),
        )
        .unwrap();
    assert_eq!(prepared.regions, ["Right_Ear", "Upper_Lip"]);
    let ids: Vec<i64> = prepared
        .prompt
        .input_ids
        .iter()
        .map(|&i| i64::from(i))
        .collect();
    assert_eq!(ids, want.i64("input_ids").unwrap().0);
    let mask: Vec<i64> = prepared
        .prompt
        .facial_token_mask
        .iter()
        .map(|&b| i64::from(b))
        .collect();
    assert_eq!(mask, want.i64("facial_token_mask").unwrap().0);
    let vec = |t: burn::tensor::Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    assert_close(
        "clip_penultimate",
        &vec(prepared.clip_penultimate.clone()),
        &want.f32("clip_penultimate").unwrap().0,
    );
    assert_close(
        "id_tokens",
        &vec(prepared.id_tokens.clone()),
        &want.f32("id_tokens").unwrap().0,
    );
    let c = &prepared.conditioning;
    assert_close("null", &vec(c.null.clone()), &want.f32("null").unwrap().0);
    assert_close(
        "augmented",
        &vec(c.augmented.clone()),
        &want.f32("augmented").unwrap().0,
    );
    assert_close(
        "text_only",
        &vec(c.text_only.clone()),
        &want.f32("text_only").unwrap().0,
    );

    let spec = DenoiseLoop {
        scheduler: SchedulerKind::Euler,
        steps: 5,
        guidance_scale: 5.0,
    };
    let init = want.tensor::<4>("init_latents", &device).unwrap();
    let image = consistentid_core::pipeline::consistentid::generate(
        &pipe.sd,
        &prepared.conditioning,
        &spec,
        2,
        init,
        &mut NoiseRng::new(0),
        &mut |_, _| {},
    )
    .unwrap();
    let err = rel_l2(
        &image.into_data().try_to_vec::<f32>().unwrap(),
        &want.f32("image").unwrap().0,
    );
    assert!(err <= 1e-3, "image: relative L2 {err:e}");
}
