//! The photo inputs of the host's API over real HTTP (`image`, `mask`, `strength`,
//! `controlnet`, `control_image`, `controlnet_conditioning_scale`, `control_guidance_start/end`,
//! `into`): an inpainting with a ControlNet equals the CLI's pixel for pixel, the host lists its
//! ControlNets, the uploads are gone after the job, `into` keeps the photo's size and every
//! pixel outside its crop, and every bad value is a problem+json naming its field.

mod common;
#[path = "photo/metrics.rs"]
mod metrics;

use std::path::Path;

use common::host::*;
use common::openapi::check_response;
use common::*;
use serde_json::{Value, json};

fn pixels(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

/// A white rectangle on black, as a PNG file.
fn mask_png(path: &Path, w: u32, h: u32, x: std::ops::Range<u32>, y: std::ops::Range<u32>) {
    image::RgbImage::from_fn(w, h, |px, py| {
        if x.contains(&px) && y.contains(&py) {
            image::Rgb([255, 255, 255])
        } else {
            image::Rgb([0, 0, 0])
        }
    })
    .save(path)
    .unwrap();
}

/// The tiny folder with the tiny ControlNet installed as `tiny`.
fn model_with_controlnet() -> tempfile::TempDir {
    let model = consistentid_folder();
    copy_dir(
        &fixture("controlnet_tiny/controlnet"),
        &model.path().join("controlnet/tiny"),
    );
    model
}

fn predict(host: &Host, input: Value) -> (u16, Value) {
    post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "input": input }),
        &[("Prefer", "wait=120")],
    )
}

#[test]
fn inpainting_with_a_controlnet_equals_the_cli() {
    let model = model_with_controlnet();
    let data = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let mask = tmp.path().join("mask.png");
    mask_png(&mask, 512, 512, 150..360, 60..300);
    let host = Host::start(model.path(), data.path(), &[]);
    let health = host.wait_health("ready");
    assert_eq!(health["controlnets"], json!(["tiny"]));
    let (_, doc) = get(&host.url("/openapi.json"), None);
    let face = real_data("images/astronaut.png");
    let (code, done) = predict(
        &host,
        json!({
            "prompt": "a portrait", "face_image": data_uri(&face, "image/png"),
            "id_embedding": id_embedding(), "num_inference_steps": 4, "start_merge_step": 1,
            "width": 48, "height": 64, "seed": 11,
            "mask": data_uri(&mask, "image/png"), "strength": 0.75,
            "controlnet": "tiny", "control_image": "canny",
            "controlnet_conditioning_scale": 0.8, "control_guidance_end": 0.75
        }),
    );
    assert_eq!(code, 201, "{done}");
    assert_eq!(done["status"], "succeeded", "{done}; {}", host.log());
    check_response(&doc, "post", "/v1/predictions", 201, &done);
    let (code, _, png) = get_bytes(done["output"][0].as_str().unwrap(), None);
    assert_eq!(code, 200);
    // The uploads went with the job.
    for field in ["mask", "face_image"] {
        let url = done["input"][field].as_str().unwrap();
        let (code, _) = get(url, Some(TOKEN));
        assert_eq!(code, 404, "{field} kept after the job");
    }

    let out = tmp.path().join("cli");
    let controlnet = model.path().join("controlnet/tiny");
    let (m, c) = (mask.to_str().unwrap(), controlnet.to_str().unwrap());
    let settings = [
        "--steps",
        "4",
        "--merge-step",
        "1",
        "--width",
        "48",
        "--height",
        "64",
        "--seed",
        "11",
        "--mask",
        m,
        "--strength",
        "0.75",
        "--controlnet",
        c,
        "--control",
        "canny",
        "--control-scale",
        "0.8",
        "--control-end",
        "0.75",
    ];
    let args = face_args(model.path(), &out, "a portrait", &settings);
    let o = run_args(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = std::fs::read(out.join("11-0.png")).unwrap();
    assert_eq!(pixels(&png), pixels(&cli), "the host's image is the CLI's");
}

#[test]
fn into_keeps_the_photo_and_its_size() {
    let model = consistentid_folder();
    let data = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let astronaut = image::open(real_data("images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let photo = tmp.path().join("photo.png");
    image::imageops::crop_imm(&astronaut, 11, 3, 301, 203)
        .to_image()
        .save(&photo)
        .unwrap();
    let mask = tmp.path().join("mask.png");
    mask_png(&mask, 301, 203, 120..170, 40..100);
    let host = Host::start(model.path(), data.path(), &[]);
    host.wait_health("ready");
    let (code, done) = predict(
        &host,
        json!({
            "prompt": "a portrait",
            "face_image": data_uri(&real_data("images/astronaut.png"), "image/png"),
            "id_embedding": id_embedding(), "num_inference_steps": 3, "start_merge_step": 1,
            "width": 48, "height": 48, "seed": 2,
            "image": data_uri(&photo, "image/png"), "mask": data_uri(&mask, "image/png"),
            "into": { "crop_margin": 0.1 }
        }),
    );
    assert_eq!(code, 201, "{done}");
    assert_eq!(done["status"], "succeeded", "{done}; {}", host.log());
    let (_, _, png) = get_bytes(done["output"][0].as_str().unwrap(), None);
    let (w, h, got) = pixels(&png);
    assert_eq!((w, h), (301, 203));
    let (_, _, original) = pixels(&std::fs::read(&photo).unwrap());
    let mut changed = 0;
    for (i, (a, b)) in got.chunks(3).zip(original.chunks(3)).enumerate() {
        let (x, y) = (i % 301, i / 301);
        if (120..170).contains(&x) && (40..100).contains(&y) {
            changed += usize::from(a != b);
        } else {
            assert_eq!(a, b, "pixel ({x}, {y}) outside the mask changed");
        }
    }
    assert!(changed > 0, "nothing was repainted");
}

#[test]
fn bad_photo_inputs_are_problems_naming_their_fields() {
    let model = model_with_controlnet();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    host.wait_health("ready");
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let base = json!({ "prompt": "x", "face_image": face, "id_embedding": id_embedding() });
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let tmp = tempfile::tempdir().unwrap();
    let mask = tmp.path().join("mask.png");
    mask_png(&mask, 64, 64, 0..32, 0..64);
    let m = data_uri(&mask, "image/png");
    for (extra, field, says) in [
        (
            json!({ "strength": 0.5 }),
            "strength",
            "needs image or mask",
        ),
        (json!({ "mask": m, "strength": 1.5 }), "strength", "(0, 1]"),
        (
            json!({ "mask": m, "controlnet": "nope", "control_image": "canny" }),
            "controlnet",
            "installed: tiny",
        ),
        (
            json!({ "control_image": "canny" }),
            "controlnet",
            "is needed by control_image",
        ),
        (
            json!({ "mask": m, "controlnet": "tiny" }),
            "control_image",
            "is required",
        ),
        (
            json!({ "mask": m, "controlnet": "tiny", "control_image": "canny", "control_guidance_start": 0.9, "control_guidance_end": 0.2 }),
            "control_guidance_start",
            "0 ≤ start < end ≤ 1",
        ),
        (json!({ "into": {} }), "into", "needs image"),
        (
            json!({ "image": m, "into": { "regions": ["ears"] } }),
            "into",
            "unknown region `ears`",
        ),
        (
            json!({ "image": m, "into": { "colour": 1 } }),
            "into",
            "unknown field",
        ),
        (json!({ "mask": "data:image/png;base64,AAAA" }), "mask", ""),
    ] {
        let (code, problem) = post_json(
            &host.url("/v1/predictions"),
            Some(TOKEN),
            &json!({ "input": with(extra.clone()) }),
            &[],
        );
        assert_eq!(code, 422, "{extra}: {problem}");
        let text = problem.to_string();
        assert!(
            text.contains(field) && text.contains(says),
            "{extra}: {problem}"
        );
    }
}
