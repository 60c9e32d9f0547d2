//! Training samples (VAE input, CLIP inputs, region masks and region images, foreground mask,
//! clean ids) against the official `MyDataset.__getitem__` on a small FGID-style folder
//! (tests/scripts/gen_training_sample.py): a square photo with every facial label, a 48×40 photo
//! (resized and centre-cropped) whose caption lacks the ears, a sample whose text is dropped.
//! Masks and ids exact; pixels within 1e-6 (the CLIP inputs every 8th pixel: the processor
//! itself is checked by the CLIP vision parity test).

use consistentid_core::clip::ClipTokenizer;
use consistentid_core::image::RgbImage;
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::source::DirSource;
use consistentid_tests::{fixture, real_data};
use consistentid_train::sample::{MAX_FACIALS, SampleSource, build};

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-6, "{what}: max error {err:e}");
}

/// Every 8th pixel of a `[3, n, n]` plane set.
fn strided(v: &[f32], n: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for c in 0..3 {
        for y in (0..n).step_by(8) {
            for x in (0..n).step_by(8) {
                out.push(v[c * n * n + y * n + x]);
            }
        }
    }
    out
}

#[test]
fn samples_match_the_official_dataset() {
    let dir = fixture("training_sample");
    let source = DirSource::open(real_data("clip")).unwrap();
    let tok = ClipTokenizer::from_source(&source, "tokenizer")
        .unwrap()
        .with_consistentid_tokens();
    let records: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("records.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    for (i, rec) in records.iter().enumerate() {
        let photo = image::open(dir.join(format!("{i}.png"))).unwrap().to_rgb8();
        let img = RgbImage {
            width: photo.width() as usize,
            height: photo.height() as usize,
            data: photo.into_raw(),
        };
        let labels = image::open(dir.join(format!("{i}_mask.png")))
            .unwrap()
            .to_luma8()
            .into_raw();
        let sample = build(
            &SampleSource {
                image: &img,
                labels: &labels,
                caption: rec["vqa_llva"].as_str().unwrap(),
                facial_caption: rec["vqa_llva_more_face_detail"].as_str().unwrap(),
                face_id: None,
                dropped: i == 2,
            },
            &tok,
            40,
            224,
            512,
        )
        .unwrap();
        let f = |n: &str| want.f32(&format!("{i}.{n}")).unwrap().0;
        close(&format!("{i} image"), &sample.image, &f("image"));
        assert_eq!(sample.facial_masks, f("facial_mask"), "{i} facial masks");
        assert_eq!(sample.foreground, f("foreground"), "{i} foreground");
        close(
            &format!("{i} clip image"),
            &strided(&sample.clip_image, 224),
            &f("clip_image"),
        );
        let regions: Vec<f32> = (0..MAX_FACIALS)
            .flat_map(|k| strided(&sample.region_images[k], 224))
            .collect();
        close(
            &format!("{i} region images"),
            &regions,
            &f("facial_clip_image"),
        );
        let ids: Vec<u32> = want
            .i64(&format!("{i}.input_ids"))
            .unwrap()
            .0
            .iter()
            .map(|&v| v as u32)
            .collect();
        assert_eq!(sample.text.tokens.input_ids, ids, "{i} ids");
        assert_eq!(sample.face_id, vec![0.0; 512], "no embedding: zeros");
    }

    // A label map without background is refused with the reason, not a KeyError.
    let img = RgbImage {
        width: 40,
        height: 40,
        data: vec![0; 40 * 40 * 3],
    };
    let labels = vec![1u8; 40 * 40];
    let err = build(
        &SampleSource {
            image: &img,
            labels: &labels,
            caption: "A face.",
            facial_caption: "The face.",
            face_id: None,
            dropped: false,
        },
        &tok,
        40,
        224,
        512,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("no background"), "{err}");
}
