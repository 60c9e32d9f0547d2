//! The SCRFD + ArcFace path against insightface 0.7.3's own Python code (tests/scripts/gen_face.py)
//! on the real public-domain photos, with random-weight replicas of det_10g / w600k_r50.

use burn::tensor::Device;
use consistentid_core::face::arcface::ArcFace;
use consistentid_core::face::scrfd::{Scrfd, letterbox};
use consistentid_core::face::{ChannelOrder, Detection, align};
use consistentid_core::image::RgbImage;
use consistentid_core::onnx::OnnxModel;
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_tests::{assert_close, fixture, real_data};

/// The real photos. PNG decodes exactly everywhere, and JPEG (libjpeg-turbo) exactly as Pillow
/// and OpenCV decode it, so both are held to the same tolerances.
const PHOTOS: [(&str, &str); 2] = [
    ("astronaut", "images/astronaut.png"),
    ("grace_hopper", "images/grace_hopper.jpg"),
];

fn photo(rel: &str) -> RgbImage {
    decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap()
}

fn model(name: &str) -> OnnxModel {
    OnnxModel::parse(
        &std::fs::read(fixture(&format!("onnx/{name}"))).unwrap(),
        name,
    )
    .unwrap()
}

fn u8_image(file: &TensorFile, name: &str) -> RgbImage {
    let (data, shape) = file.i64(name).unwrap();
    RgbImage::from_raw(
        shape[1],
        shape[0],
        data.into_iter().map(|v| v as u8).collect(),
    )
    .unwrap()
}

/// Largest per-channel difference and how many values differ.
fn image_diff(a: &RgbImage, b: &RgbImage) -> (u8, usize) {
    assert_eq!((a.width, a.height), (b.width, b.height));
    let mut worst = 0;
    let mut count = 0;
    for (x, y) in a.data.iter().zip(&b.data) {
        let d = x.abs_diff(*y);
        worst = worst.max(d);
        count += usize::from(d > 0);
    }
    (worst, count)
}

#[test]
fn decoding_matches_pillow() {
    // Sums of Pillow's decoded RGB values (PIL 10+/libjpeg-turbo; OpenCV decodes the same).
    let sum = |img: &RgbImage| img.data.iter().map(|&v| u64::from(v)).sum::<u64>();
    let hopper = photo("images/grace_hopper.jpg");
    assert_eq!((hopper.width, hopper.height), (512, 600));
    assert_eq!(sum(&hopper), 74_139_337);
    let astronaut = photo("images/astronaut.png");
    assert_eq!((astronaut.width, astronaut.height), (512, 512));
}

#[test]
fn norm_crop_matches_opencv_at_reference_landmarks() {
    for (name, rel) in PHOTOS {
        let img = photo(rel);
        let bytes = std::fs::read(fixture(&format!("face/{name}_refcrop.safetensors"))).unwrap();
        let file = TensorFile::parse(name, &bytes).unwrap();
        let (lmk, _) = file.f32("landmarks").unwrap();
        let lmk: Vec<[f32; 2]> = lmk.chunks(2).map(|p| [p[0], p[1]]).collect();
        let ours = align::norm_crop(&img, &lmk, 112);
        let (worst, count) = image_diff(&ours, &u8_image(&file, "aligned"));
        assert!(
            worst <= 1,
            "{name}: warp differs by {worst} grey levels ({count} values)"
        );
    }
}

#[test]
fn scrfd_and_arcface_match_insightface() {
    let device = Device::flex();
    for (name, rel) in PHOTOS {
        let img = photo(rel);
        for (order, tag) in [
            (ChannelOrder::Official, "official"),
            (ChannelOrder::Corrected, "corrected"),
        ] {
            let case = format!("{name}_{tag}");
            let bytes = std::fs::read(fixture(&format!("face/{case}.safetensors"))).unwrap();
            let file = TensorFile::parse(&case, &bytes).unwrap();

            // insightface was handed the RGB array (official) or the BGR one (corrected).
            let handed = match order {
                ChannelOrder::Official => img.clone(),
                ChannelOrder::Corrected => img.swap_rb(),
            };
            let canvas = letterbox(&handed, (160, 128)).canvas;
            assert_eq!(
                image_diff(&canvas, &u8_image(&file, "canvas")),
                (0, 0),
                "{case}: letterbox"
            );

            let mut det = Scrfd::new(model("scrfd_tiny_det.onnx"), &device).unwrap();
            det.input_size = (160, 128);
            det.channel_order = order;
            let found = det.detect(&img).unwrap();
            let (boxes, _) = file.f32("boxes").unwrap();
            let (scores, _) = file.f32("scores").unwrap();
            let (lmks, _) = file.f32("landmarks").unwrap();
            let want: Vec<Detection> = (0..scores.len())
                .map(|i| Detection {
                    bbox: [
                        boxes[4 * i],
                        boxes[4 * i + 1],
                        boxes[4 * i + 2],
                        boxes[4 * i + 3],
                    ],
                    score: scores[i],
                    landmarks: (0..5)
                        .map(|p| [lmks[10 * i + 2 * p], lmks[10 * i + 2 * p + 1]])
                        .collect(),
                })
                .collect();
            assert_eq!(found.len(), want.len(), "{case}: number of faces");
            // Same scores in the same order; equal scores (the black letterbox margin gives many)
            // may come in either order, so boxes are matched among near-equal scores.
            let mut unmatched: Vec<&Detection> = found.iter().collect();
            for (i, w) in want.iter().enumerate() {
                assert!(
                    (found[i].score - w.score).abs() < 1e-5,
                    "{case}: score #{i}"
                );
                let close = |f: &&Detection| {
                    (f.score - w.score).abs() < 1e-5
                        && f.bbox
                            .iter()
                            .zip(&w.bbox)
                            .all(|(a, b)| (a - b).abs() < 2e-3)
                        && f.landmarks
                            .iter()
                            .zip(&w.landmarks)
                            .all(|(p, q)| (p[0] - q[0]).abs() < 2e-3 && (p[1] - q[1]).abs() < 2e-3)
                };
                let j = unmatched
                    .iter()
                    .position(close)
                    .unwrap_or_else(|| panic!("{case}: no match for {w:?}"));
                unmatched.remove(j);
            }

            // faces[0] → norm_crop → ArcFace replica.
            let best = found[0].clone();
            let mut rec = ArcFace::new(model("iresnet50_tiny.onnx"), &device).unwrap();
            rec.channel_order = order;
            let aligned = rec.align(&img, &best.landmarks).unwrap();
            let (worst, count) = image_diff(&aligned, &u8_image(&file, "aligned"));
            assert!(
                worst <= 1,
                "{case}: aligned crop differs by {worst} ({count} values)"
            );
            let emb = rec.embed(&aligned).unwrap();
            assert_close(
                &format!("{case}: embedding"),
                &emb.embedding,
                &file.f32("embedding").unwrap().0,
            );
            assert_close(
                &format!("{case}: normed"),
                &emb.normed,
                &file.f32("normed_embedding").unwrap().0,
            );
        }
    }
}

#[test]
fn letterbox_of_tall_and_wide_images() {
    let img = RgbImage::new(300, 100);
    let lb = letterbox(&img, (640, 640));
    assert_eq!((lb.canvas.width, lb.canvas.height), (640, 640));
    // insightface: new height int(640 * 100 / 300) = 213, scale = 213 / 100.
    assert!((lb.scale - 2.13).abs() < 1e-6);
    let tall = letterbox(&RgbImage::new(100, 300), (640, 640));
    assert!((tall.scale - 640.0 / 300.0).abs() < 1e-6);
}

mod blazeface {
    use super::*;
    use consistentid_core::face::blazeface::BlazeFace;

    fn load(file: &str) -> BlazeFace {
        let path = real_data(&format!("blazeface/{file}"));
        let model = OnnxModel::parse(&std::fs::read(&path).unwrap(), file).unwrap();
        BlazeFace::new(model, &Device::flex()).unwrap()
    }

    /// Real weights against onnxruntime + the Python decoding (tests/scripts/gen_blazeface.py),
    /// and against the reference points of shared/spec/real-data.md (±2 px).
    #[test]
    fn real_blazeface_matches_references() {
        for (model, file) in [
            ("front", "face_detection_front_128x128_barracuda.onnx"),
            ("back", "face_detection_back_256x256_barracuda.onnx"),
        ] {
            let det = load(file);
            for (name, rel) in PHOTOS {
                let img = photo(rel);
                let case = format!("blazeface_{model}_{name}");
                let bytes = std::fs::read(fixture(&format!("face/{case}.safetensors"))).unwrap();
                let want = TensorFile::parse(&case, &bytes).unwrap();
                if let Ok((patch, _)) = want.f32("input_patch") {
                    // Pillow's bilinear downscale, reproduced exactly.
                    let (ours, _, _) = det.preprocess(&img);
                    let s = det.size;
                    for y in 0..32 {
                        for x in 0..32 {
                            for c in 0..3 {
                                let a = ours[((48 + y) * s + 48 + x) * 3 + c];
                                assert_eq!(
                                    a,
                                    patch[(y * 32 + x) * 3 + c],
                                    "{case}: input ({x},{y})"
                                );
                            }
                        }
                    }
                }
                let found = det.detect(&img).unwrap();
                let (scores, _) = want.f32("scores").unwrap();
                let (lmks, _) = want.f32("landmarks").unwrap();
                assert_eq!(found.len(), scores.len(), "{case}: number of faces");
                assert_eq!(found.len(), 1, "{case}: one face in the photo");
                let f = &found[0];
                let (score_tol, px_tol) = (1e-4, 0.05);
                assert!(
                    (f.score - scores[0]).abs() < score_tol,
                    "{case}: score {} vs {}",
                    f.score,
                    scores[0]
                );
                for (k, p) in f.landmarks.iter().enumerate() {
                    let (x, y) = (lmks[2 * k], lmks[2 * k + 1]);
                    assert!(
                        (p[0] - x).abs() < px_tol && (p[1] - y).abs() < px_tol,
                        "{case}: keypoint {k} {p:?} vs ({x}, {y})"
                    );
                }
            }
        }
        // real-data.md: front model on astronaut.png. Its points are the best anchor's own
        // (plain NMS); the weighted blend moves the eyes by up to 2.1 px.
        let mut det = load("face_detection_front_128x128_barracuda.onnx");
        det.weighted = false;
        let f = det
            .detect(&photo("images/astronaut.png"))
            .unwrap()
            .remove(0);
        assert!((f.score - 0.921).abs() < 0.005, "{}", f.score);
        let eyes_nose_mouth = [
            [204.0, 103.0],
            [249.0, 109.0],
            [223.0, 126.0],
            [220.0, 147.0],
        ];
        for (p, r) in f.landmarks.iter().zip(eyes_nose_mouth) {
            assert!(
                (p[0] - r[0]).abs() <= 2.0 && (p[1] - r[1]).abs() <= 2.0,
                "{p:?} vs {r:?}"
            );
        }
    }
}

mod mtcnn {
    use super::*;
    use consistentid_core::face::mtcnn::Mtcnn;

    pub(super) fn load() -> Mtcnn {
        let files: Vec<(Vec<u8>, String)> = ["pnet", "rnet", "onet"]
            .iter()
            .map(|n| {
                let p = real_data(&format!("mtcnn/{n}.pt"));
                (std::fs::read(&p).unwrap(), p.display().to_string())
            })
            .collect();
        Mtcnn::load(
            [
                (&files[0].0, &files[0].1),
                (&files[1].0, &files[1].1),
                (&files[2].0, &files[2].1),
            ],
            &Device::flex(),
        )
        .unwrap()
    }

    /// Real weights (legacy torch pickles) against facenet-pytorch's `detect_face`
    /// (tests/scripts/gen_mtcnn.py) and the reference points of shared/spec/real-data.md.
    #[test]
    fn real_mtcnn_matches_facenet_pytorch() {
        let det = load();
        let reference = [
            (
                "astronaut",
                [
                    [204.0, 100.0],
                    [247.0, 103.0],
                    [224.0, 129.0],
                    [201.0, 139.0],
                    [245.0, 142.0],
                ],
            ),
            (
                "grace_hopper",
                [
                    [224.0, 193.0],
                    [310.0, 188.0],
                    [271.0, 238.0],
                    [234.0, 279.0],
                    [306.0, 274.0],
                ],
            ),
        ];
        for ((name, rel), (_, points)) in PHOTOS.iter().zip(reference) {
            let found = det.detect(&photo(rel)).unwrap();
            let bytes = std::fs::read(fixture(&format!("face/mtcnn_{name}.safetensors"))).unwrap();
            let want = TensorFile::parse(name, &bytes).unwrap();
            let (boxes, _) = want.f32("boxes").unwrap();
            let (scores, _) = want.f32("scores").unwrap();
            let (lmks, _) = want.f32("landmarks").unwrap();
            assert_eq!(found.len(), scores.len(), "{name}: number of faces");
            let f = &found[0];
            // Float noise only: both photos decode exactly as in the reference.
            let px = 0.05;
            assert!((f.score - scores[0]).abs() < 1e-3, "{name}: score");
            for k in 0..4 {
                assert!(
                    (f.bbox[k] - boxes[k]).abs() < px,
                    "{name}: box {:?} vs {:?}",
                    f.bbox,
                    &boxes[..4]
                );
            }
            for (k, p) in f.landmarks.iter().enumerate() {
                assert!(
                    (p[0] - lmks[2 * k]).abs() < px && (p[1] - lmks[2 * k + 1]).abs() < px,
                    "{name}: landmark {k} {p:?} vs ({}, {})",
                    lmks[2 * k],
                    lmks[2 * k + 1]
                );
                // facenet-pytorch itself puts grace_hopper's right eye 2.3 px from the spec's
                // point (221.7 vs 224); everything else is within 2 px.
                let spec_tol = if *name == "grace_hopper" && k == 0 {
                    2.5
                } else {
                    2.0
                };
                assert!(
                    (p[0] - points[k][0]).abs() <= spec_tol
                        && (p[1] - points[k][1]).abs() <= spec_tol,
                    "{name}: landmark {k} {p:?} vs reference {:?}",
                    points[k]
                );
            }
        }
    }

    #[test]
    fn wrong_or_truncated_weights_are_clear_errors() {
        let p = std::fs::read(real_data("mtcnn/pnet.pt")).unwrap();
        let r = std::fs::read(real_data("mtcnn/rnet.pt")).unwrap();
        let o = std::fs::read(real_data("mtcnn/onet.pt")).unwrap();
        let err = Mtcnn::load(
            [(&r, "rnet.pt"), (&r, "rnet.pt"), (&o, "onet.pt")],
            &Device::flex(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("rnet.pt"), "{err}");
        let cut = &p[..p.len() - 100];
        let err = Mtcnn::load(
            [(cut, "pnet.pt"), (&r, "rnet.pt"), (&o, "onet.pt")],
            &Device::flex(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = Mtcnn::load(
            [(b"garbage", "x.pt"), (&r, "rnet.pt"), (&o, "onet.pt")],
            &Device::flex(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("x.pt"), "{err}");
    }
}

/// FaceSim with FaceNet under FastComposer's rule (tests/scripts/gen_facenet.py): facenet-pytorch's
/// MTCNN (real weights) → the first face → `extract_face` (160², bilinear) → `InceptionResnetV1`
/// (its own code at 1/16 width, random weights) → max(dot, 0).
#[test]
fn facenet_crop_and_embedding_match_facenet_pytorch() {
    use consistentid_core::face::facenet::{FACE_SIZE, InceptionResnetV1, extract_face};
    let dir = fixture("facenet_tiny");
    let net = InceptionResnetV1::load(
        &std::fs::read(dir.join("facenet.pt")).unwrap(),
        "facenet.pt",
        &Device::flex(),
    )
    .unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let detector = mtcnn::load();
    let mut embeddings = Vec::new();
    for (photo, rel) in [
        ("astronaut", "images/astronaut.png"),
        ("grace_hopper", "images/grace_hopper.jpg"),
    ] {
        let img = decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap();
        let first = detector.detect(&img).unwrap().remove(0);
        let (boxed, _) = want.f32(&format!("{photo}.box")).unwrap();
        for (a, b) in first.bbox.iter().zip(&boxed) {
            assert!(
                (a - b).abs() < 1e-2,
                "{photo}: box {:?} vs {boxed:?}",
                first.bbox
            );
        }
        let face = extract_face(&img, &first).unwrap();
        let (pixels, _) = want.i64(&format!("{photo}.face")).unwrap();
        let n = FACE_SIZE * FACE_SIZE;
        let expected: Vec<f32> = (0..3 * n)
            .map(|i| (pixels[(i % n) * 3 + i / n] as f32 - 127.5) / 128.0)
            .collect();
        assert_eq!(face, expected, "{photo}: the 160² crop");
        let embedding = net.embed(&[face]).unwrap().remove(0);
        assert_close(
            &format!("{photo} embedding"),
            &embedding,
            &want.f32(&format!("{photo}.embedding")).unwrap().0,
        );
        embeddings.push(embedding);
    }
    let dot: f32 = embeddings[0]
        .iter()
        .zip(&embeddings[1])
        .map(|(a, b)| a * b)
        .sum();
    let (facesim, _) = want.f32("facesim").unwrap();
    assert!((dot.max(0.0) - facesim[0]).abs() < 1e-4);
}
