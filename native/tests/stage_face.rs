//! The face stages end to end: ONNX graphs, detection, ArcFace, face parsing and regions, EXIF
//! orientation, and their input errors.

mod common;

use common::*;
use consistentid_core::tensor_io::TensorFile;

#[test]
fn onnx_stage_runs_a_graph_by_its_names() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.safetensors");
    let case = fixture("onnx/iresnet50_tiny.safetensors");
    let o = run(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("out", &bytes).unwrap();
    let want_bytes = std::fs::read(&case).unwrap();
    let want = TensorFile::parse("case", &want_bytes).unwrap();
    assert!(
        rel_err(
            &got.f32("fc1").unwrap().0,
            &want.f32("expected.fc1").unwrap().0
        ) < 1e-4
    );

    // An op outside the set, a truncated file, an input file without the graph's inputs.
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/unsupported_erf.onnx").to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("unsupported ONNX op `Erf`") && err.contains("the_erf"),
        "{err}"
    );
    let cut = tmp.path().join("cut.onnx");
    let full = std::fs::read(fixture("onnx/iresnet50_tiny.onnx")).unwrap();
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        cut.to_str().unwrap(),
        "--input",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("cut.onnx"), "{err}");
    let err = expect_error(&[
        "stage",
        "onnx",
        "--model",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--input",
        fixture("onnx/gemm.safetensors").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("input.1"), "{err}");
}

#[test]
fn detect_stage_finds_the_real_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("det.safetensors");
    let img = real_data("images/astronaut.png");
    for (detector, weights, points) in [
        ("mtcnn", real_data("mtcnn"), 5),
        (
            "blazeface",
            real_data("blazeface/face_detection_front_128x128_barracuda.onnx"),
            6,
        ),
    ] {
        let o = run(&[
            "stage",
            "detect",
            "--detector",
            detector,
            "--weights",
            weights.to_str().unwrap(),
            "--image",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = read_out(&out);
        let got = TensorFile::parse("det", &bytes).unwrap();
        let (boxes, shape) = got.f32("boxes").unwrap();
        assert_eq!(shape, [1, 4], "{detector}");
        // real-data.md: the face is about (178,58)-(268,174); BlazeFace's box starts lower on
        // the forehead (y1 ≈ 81).
        for (b, r) in boxes.iter().zip([178.0, 58.0, 268.0, 174.0]) {
            assert!((b - r).abs() < 25.0, "{detector}: {boxes:?}");
        }
        assert_eq!(got.f32("landmarks").unwrap().1, [1, points, 2]);
    }
    // SCRFD (the replica graph) at a custom size.
    let o = run(&[
        "stage",
        "detect",
        "--detector",
        "scrfd",
        "--weights",
        fixture("onnx/scrfd_tiny_det.onnx").to_str().unwrap(),
        "--det-size",
        "160x128",
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let want_bytes = std::fs::read(fixture("face/astronaut_official.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    let got = TensorFile::parse("det", &bytes).unwrap();
    assert_eq!(got.f32("scores").unwrap().1, want.f32("scores").unwrap().1);
}

#[test]
fn arcface_stage_matches_insightface_on_the_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("emb.safetensors");
    let img = real_data("images/astronaut.png");
    let landmarks = format!("scrfd:{}", fixture("onnx/scrfd_tiny_det.onnx").display());
    let o = run(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--landmarks-from",
        &landmarks,
        "--det-size",
        "160x128",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The replica finds hundreds of "faces": the stage lists them in a warning.
    assert!(stderr.contains("warning: 433 faces found"), "{stderr}");
    let bytes = read_out(&out);
    let got = TensorFile::parse("emb", &bytes).unwrap();
    let want_bytes = std::fs::read(fixture("face/astronaut_official.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    assert!(
        rel_err(
            &got.f32("normed_embedding").unwrap().0,
            &want.f32("normed_embedding").unwrap().0
        ) < 1e-4
    );
    assert_eq!(got.f32("aligned").unwrap().1, [1, 3, 112, 112]);
}

#[test]
fn face_stage_input_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    // A black image: no face.
    let black = tmp.path().join("black.png");
    let file = std::fs::File::create(&black).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 200, 200);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header()
        .unwrap()
        .write_image_data(&vec![0u8; 200 * 200 * 3])
        .unwrap();
    let mtcnn = format!("mtcnn:{}", real_data("mtcnn").display());
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        black.to_str().unwrap(),
        "--landmarks-from",
        &mtcnn,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("no face found") && err.contains("black.png"),
        "{err}"
    );
    // A corrupt image.
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    let err = expect_error(&[
        "stage",
        "detect",
        "--detector",
        "mtcnn",
        "--weights",
        real_data("mtcnn").to_str().unwrap(),
        "--image",
        corrupt.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("corrupt.jpg"), "{err}");
    // Face index beyond the faces found; a non-crop without landmarks.
    let img = real_data("images/astronaut.png");
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--landmarks-from",
        &mtcnn,
        "--face",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        err.contains("face index 3") && err.contains("1 face"),
        "{err}"
    );
    let err = expect_error(&[
        "stage",
        "arcface",
        "--weights",
        fixture("onnx/iresnet50_tiny.onnx").to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("aligned 112x112 crop"), "{err}");
}

#[test]
fn parsing_stages_match_the_official_region_code() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.safetensors");
    let img = real_data("images/astronaut.png");
    let weights = fixture("bisenet_tiny/face_parsing.pth");
    let want_bytes = std::fs::read(fixture("bisenet_tiny/expected.safetensors")).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();

    let o = run(&[
        "stage",
        "bisenet",
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (labels, shape) = got.i64("labels").unwrap();
    assert_eq!(shape, [512, 512]);
    let (ref_labels, _) = want.i64("astronaut.labels").unwrap();
    assert!(
        labels
            .iter()
            .zip(&ref_labels)
            .filter(|(a, b)| a != b)
            .count()
            <= 5
    );
    assert_eq!(got.f32("logits").unwrap().1, [1, 19, 512, 512]);

    let spec = format!("bisenet:{}", weights.display());
    let o = run(&[
        "stage",
        "face-regions",
        "--labels-from",
        &spec,
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (valid, _) = got.i64("region_valid").unwrap();
    let (region_labels, _) = want.i64("astronaut.region_labels").unwrap();
    let kept = region_labels.len();
    assert_eq!(valid, [vec![1; kept], vec![0; 5 - kept]].concat());
    let (masks, _) = got.f32("masks").unwrap();
    for k in 0..kept {
        let (bits, _) = want.i64(&format!("astronaut.region{k}.mask")).unwrap();
        let differ = (0..512 * 512)
            .filter(|&i| {
                ((bits[i / 8] >> (7 - i % 8)) & 1 == 1) != (masks[k * 512 * 512 + i] > 0.5)
            })
            .count();
        assert!(differ <= 5, "region {k}: {differ} pixels differ");
    }

    let o = run(&[
        "stage",
        "region-images",
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    let (pixels, shape) = got.f32("region_pixel_values").unwrap();
    assert_eq!(shape, [5, 3, 224, 224]);
    let n = 224 * 224;
    for k in 0..kept {
        let (sums, _) = want.f64(&format!("astronaut.region{k}.pixel_sum")).unwrap();
        let (patch, _) = want
            .f32(&format!("astronaut.region{k}.pixel_patch"))
            .unwrap();
        for c in 0..3 {
            let base = (k * 3 + c) * n;
            let sum: f64 = pixels[base..base + n].iter().map(|&v| f64::from(v)).sum();
            assert!(
                (sum - sums[c]).abs() < 1e-2 * (1.0 + sums[c].abs()),
                "region {k} channel {c}: {sum} vs {}",
                sums[c]
            );
            for y in 0..32 {
                for x in 0..32 {
                    let a = pixels[base + (96 + y) * 224 + 96 + x];
                    let b = patch[(c * 32 + y) * 32 + x];
                    assert!(
                        (a - b).abs() < 1e-5,
                        "region {k}: pixel ({x},{y}) {a} vs {b}"
                    );
                }
            }
        }
    }
    assert!(
        pixels[kept * 3 * n..].iter().all(|&v| v == 0.0),
        "absent regions are zero"
    );
}

/// EXIF orientation is applied on load, as diffusers' `load_image` (Pillow `exif_transpose`).
#[test]
fn exif_orientation_is_applied() {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 2, 1);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().unwrap();
        // TIFF header (big-endian), one IFD entry: Orientation (0x0112) = 6, "rotate 90° CW".
        let exif = [
            0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0,
            0, 0, 0,
        ];
        w.write_chunk(png::chunk::ChunkType(*b"eXIf"), &exif)
            .unwrap();
        w.write_image_data(&[255, 0, 0, 0, 0, 255]).unwrap();
    }
    let img = consistentid_core::image::decode(&bytes, "rotated.png").unwrap();
    assert_eq!((img.width, img.height), (1, 2));
    assert_eq!(
        img.data,
        [255, 0, 0, 0, 0, 255],
        "red above blue after the rotation"
    );
}
