//! core's BlazeFace and BiSeNet compiled to wasm32 and run in headless Chromium, as the web app
//! runs them: on WebGPU (burn's wgpu runtime; SwiftShader here) and on the CPU fallback (flex),
//! with the asynchronous read-backs. Both against the references the native parity tests use
//! (tests/scripts/gen_blazeface.py: onnxruntime + MediaPipe's decoding; gen_bisenet.py:
//! facexlib), with the native tests' tolerances, so the browser's outputs are the native ones.
//! scripts/test.sh runs it: `cargo test --target wasm32-unknown-unknown` with
//! wasm-bindgen-test-runner and chromedriver (webdriver.json gives Chromium its WebGPU flag).
//! The real photo and BlazeFace graph come from $CONSISTENTID_REAL_DATA at build time
//! (tests/scripts/fetch_real_data.sh).
#![cfg(target_family = "wasm")]

use burn::tensor::Device;
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::face::blazeface::BlazeFace;
use consistentid_core::image::RgbImage;
use consistentid_core::onnx::OnnxModel;
use consistentid_core::tensor_io::TensorFile;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const PHOTO: &[u8] = include_bytes!(concat!(
    env!("CONSISTENTID_REAL_DATA"),
    "/images/astronaut.png"
));
const BLAZEFACE: &[u8] = include_bytes!(concat!(
    env!("CONSISTENTID_REAL_DATA"),
    "/blazeface/face_detection_front_128x128_barracuda.onnx"
));
const BLAZEFACE_REFERENCE: &[u8] =
    include_bytes!("../../tests/fixtures/face/blazeface_front_astronaut.safetensors");
const BISENET: &[u8] = include_bytes!("../../tests/fixtures/bisenet_tiny/face_parsing.pth");
const BISENET_REFERENCE: &[u8] =
    include_bytes!("../../tests/fixtures/bisenet_tiny/expected.safetensors");

fn photo() -> RgbImage {
    let img = image::load_from_memory(PHOTO).unwrap().to_rgb8();
    RgbImage {
        width: img.width() as usize,
        height: img.height() as usize,
        data: img.into_raw(),
    }
}

/// BlazeFace (real weights) and BiSeNet (tiny replica) on `device` against the references.
async fn check(device: Device, backend: &str) {
    let img = photo();
    let graph = OnnxModel::parse(BLAZEFACE, "face_detection_front_128x128_barracuda.onnx").unwrap();
    let found = BlazeFace::new(graph, &device)
        .unwrap()
        .detect_async(&img)
        .await
        .unwrap();
    let want = TensorFile::parse("blazeface reference", BLAZEFACE_REFERENCE).unwrap();
    let (scores, _) = want.f32("scores").unwrap();
    let (points, _) = want.f32("landmarks").unwrap();
    assert_eq!(found.len(), 1, "{backend}: faces found");
    let face = &found[0];
    assert!(
        (face.score - scores[0]).abs() < 1e-4,
        "{backend}: score {} vs {}",
        face.score,
        scores[0]
    );
    for (k, p) in face.landmarks.iter().enumerate() {
        let (x, y) = (points[2 * k], points[2 * k + 1]);
        assert!(
            (p[0] - x).abs() < 0.05 && (p[1] - y).abs() < 0.05,
            "{backend}: keypoint {k} {p:?} vs ({x}, {y})"
        );
    }

    let net = BiSeNet::load(BISENET, "face_parsing.pth", &device).unwrap();
    let labels = net.label_map_async(&img, &device).await.unwrap();
    let reference = TensorFile::parse("bisenet reference", BISENET_REFERENCE).unwrap();
    let (want, shape) = reference.i64("astronaut.labels").unwrap();
    assert_eq!(shape, [512, 512]);
    // As natively: argmax may flip where two logits tie within float noise.
    let differ = labels
        .iter()
        .zip(&want)
        .filter(|(a, b)| i64::from(**a) != **b)
        .count();
    assert!(
        differ <= 5,
        "{backend}: {differ} labels differ from facexlib's"
    );
}

#[wasm_bindgen_test]
async fn blazeface_and_bisenet_match_the_references_on_the_cpu_fallback() {
    check(Device::flex(), "flex").await;
}

#[wasm_bindgen_test]
async fn blazeface_and_bisenet_match_the_references_on_webgpu() {
    // The app's device choice would fall back to the CPU; here no adapter is a failure.
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .expect("a WebGPU adapter (Chromium with --enable-unsafe-webgpu)");
    let adapter = setup.adapter.get_info().name;
    check(device, &format!("WebGPU ({adapter})")).await;
}
