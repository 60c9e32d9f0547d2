//! Helpers of the page tests in Chromium: the model folder the host serves them, screenshots,
//! and reading or filling the page's elements.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use consistentid_core::face::Detection;
use consistentid_core::face::blazeface::{self, BlazeFace};
use consistentid_core::onnx::OnnxModel;
use consistentid_native::io::image::decode;
use fantoccini::{Client, Locator};

use crate::{fixture, real_data};

/// The browser's face detectors (MediaPipe's BlazeFace, front and back models).
pub const BLAZEFACE: &str = blazeface::MODEL_FOLDER_PATH;
pub const BLAZEFACE_BACK: &str = blazeface::BACK_MODEL_FOLDER_PATH;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// sd_tiny + the tiny pipeline replica + BiSeNet + replica buffalo_l graphs + the real
/// BlazeFace models (the browser's detectors), in `root/model`.
pub fn model_folder(root: &Path) -> PathBuf {
    let dir = root.join("model");
    copy_dir(&fixture("sd_tiny"), &dir);
    copy_dir(
        &fixture("consistentid_pipeline/image_encoder"),
        &dir.join("image_encoder"),
    );
    for (from, to) in [
        (
            "consistentid_pipeline/ConsistentID-v1.bin",
            "ConsistentID-v1.bin",
        ),
        ("bisenet_tiny/face_parsing.pth", "face_parsing.pth"),
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
    ] {
        std::fs::copy(fixture(from), dir.join(to)).unwrap();
    }
    std::fs::create_dir_all(dir.join("blazeface")).unwrap();
    for rel in [BLAZEFACE, BLAZEFACE_BACK] {
        std::fs::copy(real_data(rel), dir.join(rel)).unwrap();
    }
    dir
}

/// BlazeFace run natively on `photo` from the model folder: the front model alone, or with
/// the back model's extra faces merged in as the browser does.
pub fn native_faces(model: &Path, photo: &Path, with_back: bool) -> Vec<Detection> {
    let device = Device::flex();
    let img = decode(&std::fs::read(photo).unwrap(), "photo").unwrap();
    let load = |rel: &str| {
        let file = std::fs::read(model.join(rel)).unwrap();
        BlazeFace::new(OnnxModel::parse(&file, rel).unwrap(), &device).unwrap()
    };
    let front = load(BLAZEFACE).detect(&img).unwrap();
    if !with_back {
        return front;
    }
    let back = load(BLAZEFACE_BACK);
    let small = back.detect(&img).unwrap();
    blazeface::merge(front, small, back.nms_threshold)
}

/// Saves a screenshot as `dir/name.png` (kept as the test's artifact).
pub async fn shot(client: &Client, dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The rendered text of the first element matching `css` ("" when absent).
pub async fn text(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The current value of the input or text area matching `css` ("" when it has none).
pub async fn value(client: &Client, css: &str) -> String {
    let e = client.find(Locator::Css(css)).await.unwrap();
    e.prop("value").await.unwrap().unwrap_or_default()
}

/// An attribute of the first element matching `css` ("" when absent).
pub async fn attr(client: &Client, css: &str, name: &str) -> String {
    let e = client.find(Locator::Css(css)).await.unwrap();
    e.attr(name).await.unwrap().unwrap_or_default()
}

/// Replaces an input's value by typing.
pub async fn set(client: &Client, css: &str, value: &str) {
    let e = client.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

/// Opens the create page at `base` and chooses `photo` in its file input; the input.
pub async fn choose_photo(
    client: &Client,
    base: &str,
    photo: &Path,
) -> fantoccini::elements::Element {
    client.goto(&format!("{base}/")).await.unwrap();
    let input = client
        .wait()
        .at_most(std::time::Duration::from_secs(60))
        .for_element(Locator::Css("#face-input"))
        .await
        .unwrap();
    input.send_keys(photo.to_str().unwrap()).await.unwrap();
    input
}

/// Opens the form's settings and asks for `steps` steps at a custom `width` × `height`.
pub async fn small_settings(client: &Client, steps: &str, width: &str, height: &str) {
    client
        .find(Locator::Css("#advanced summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    set(client, "#steps", steps).await;
    client
        .find(Locator::Css("#size"))
        .await
        .unwrap()
        .select_by_value("custom")
        .await
        .unwrap();
    set(client, "#width", width).await;
    set(client, "#height", height).await;
}

/// The page's per-browser API token.
pub async fn page_token(client: &Client) -> String {
    client
        .execute("return localStorage.getItem('consistentid-token')", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

/// The web app's build (`trunk build` writes it; scripts/test.sh runs it first).
pub fn dist() -> PathBuf {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist");
    assert!(
        dist.join("index.html").exists(),
        "build the web app first: `trunk build` (scripts/test.sh does)"
    );
    dist
}

/// Waits until `css`'s text satisfies `ok` (bounded); the text.
pub async fn wait_text(client: &Client, css: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let t = text(client, css).await;
        if ok(&t) {
            return t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{css}: {t:?} (status {:?}, error {:?})",
            text(client, "#status").await,
            text(client, "#error").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` finds.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}
