//! The web app end to end in headless Chromium against `consistentid serve` on the tiny models
//! (replica SCRFD/ArcFace graphs as buffalo_l, so the host detects and embeds the face), twice:
//! with WebGPU (`--enable-unsafe-webgpu`: Chromium's SwiftShader adapter) and without (the
//! app's CPU fallback). Upload a photo of two faces (astronaut.png's, and its mirror image) →
//! the browser's BlazeFace keypoints equal native BlazeFace's within 1 px, computed in the
//! analysis worker → the label map the browser sends equals native BiSeNet's (same tiny
//! weights, same pixels) → pick the second face
//! → settings → generate → progress and live previews on the prediction page → the image shown
//! equals the CLI's `generate --face --face-index <that face's box>` for the same request and
//! seed → the
//! share link, opened in a fresh browser profile, shows the same image and parameters. A
//! screenshot of each state is saved under the target dir (web-e2e/{webgpu,cpu}/). Needs
//! Debian's `chromium` + `chromium-driver` (scripts/install-tools.sh) and the web app built
//! (`trunk build`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use burn::tensor::Device;
use consistentid_core::bisenet::BiSeNet;
use consistentid_native::io::image::decode;
use consistentid_tests::browser::{Driver, Host, binary, browser};
use consistentid_tests::page::{
    attr, dist, model_folder, native_faces, set, shot, small_settings, text,
};
use consistentid_tests::real_data;
use fantoccini::{Client, Locator};

const STEPS: &str = "120";

/// Decoded RGB of a PNG.
fn pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(png).unwrap().to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

/// The PNG's `parameters` text.
fn png_parameters(bytes: &[u8]) -> String {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    reader
        .info()
        .utf8_text
        .iter()
        .find(|t| t.keyword == "parameters")
        .and_then(|t| t.get_text().ok())
        .unwrap_or_default()
}

fn fetch(url: &str) -> Vec<u8> {
    let mut resp = ureq::get(url).call().unwrap();
    resp.body_mut().read_to_vec().unwrap()
}

/// "x,y;x,y;…" as the analysis panel writes its keypoints.
fn parse_points(text: &str) -> Vec<[f32; 2]> {
    text.split(';')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            [x.parse().unwrap(), y.parse().unwrap()]
        })
        .collect()
}

/// astronaut.png's face and its mirror image side by side (512 × 256): two faces that
/// BlazeFace finds.
fn two_faces(dir: &Path) -> PathBuf {
    use image::imageops::{crop_imm, flip_horizontal, replace};
    let photo = image::open(real_data("images/astronaut.png"))
        .unwrap()
        .to_rgb8();
    let face = crop_imm(&photo, 96, 0, 256, 256).to_image();
    let mut both = image::RgbImage::new(512, 256);
    replace(&mut both, &face, 0, 0);
    replace(&mut both, &flip_horizontal(&face), 256, 0);
    let path = dir.join("two_faces.png");
    both.save(&path).unwrap();
    path
}

/// The browser's analysis against core's models run natively on the same photo: BlazeFace's
/// keypoints within 1 px, the label map it sends equal to BiSeNet's.
async fn check_analysis(client: &Client, model: &Path, photo: &Path, webgpu: bool) {
    // Under the closed "Details" toggle: its text content, not its (hidden) rendered text.
    let backend = client
        .find(Locator::Css("#backend"))
        .await
        .unwrap()
        .prop("textContent")
        .await
        .unwrap()
        .unwrap_or_default();
    let expected = if webgpu { "WebGPU" } else { "CPU" };
    assert!(
        backend.contains(expected),
        "backend {backend:?}, status {:?}",
        text(client, "#status").await
    );
    let img = decode(&std::fs::read(photo).unwrap(), "two_faces.png").unwrap();
    let device = Device::flex();
    let native = native_faces(model, photo, true);
    let items = client.find_all(Locator::Css("#faces li")).await.unwrap();
    assert_eq!(items.len(), native.len(), "faces found");
    assert!(!native.is_empty());
    for (item, face) in items.iter().zip(&native) {
        let shown = parse_points(&item.attr("data-keypoints").await.unwrap().unwrap());
        assert_eq!(shown.len(), face.landmarks.len());
        for (a, b) in shown.iter().zip(&face.landmarks) {
            assert!(
                (a[0] - b[0]).abs() <= 1.0 && (a[1] - b[1]).abs() <= 1.0,
                "keypoint {a:?} in the browser, {b:?} natively"
            );
        }
    }
    let href = attr(client, "#label-map", "href").await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(href.strip_prefix("data:image/png;base64,").unwrap())
        .unwrap();
    let sent = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!(sent.dimensions(), (512, 512));
    let weights = std::fs::read(model.join("face_parsing.pth")).unwrap();
    let labels = BiSeNet::load(&weights, "face_parsing.pth", &device)
        .unwrap()
        .label_map(&img, &device)
        .unwrap();
    let differ = sent
        .as_raw()
        .iter()
        .zip(&labels)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(differ, 0, "labels differing from native BiSeNet's");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portrait_from_upload_to_share_link_on_webgpu() {
    portrait(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_portrait_from_upload_to_share_link_on_the_cpu_fallback() {
    portrait(false).await;
}

async fn portrait(webgpu: bool) {
    let mode = if webgpu { "webgpu" } else { "cpu" };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web-e2e")
        .join(mode);
    let dist = dist();
    let tmp = tempfile::tempdir().unwrap();
    let model = model_folder(tmp.path());
    let photo = two_faces(tmp.path());
    let host = Host::start(&model, &tmp.path().join("data"), &dist);
    let driver = Driver::start();
    let client = browser(&driver, &tmp.path().join("profile-a"), webgpu).await;

    client.goto(&format!("{}/", host.1)).await.unwrap();
    let input = client
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#face-input"))
        .await
        .expect("the upload input appears once the wasm app mounts");
    assert!(text(&client, "#status").await.contains("Choose a photo"));
    shot(&client, &shots, "1-create").await;
    input.send_keys(photo.to_str().unwrap()).await.unwrap();
    let start = Instant::now();
    loop {
        let status = text(&client, "#status").await;
        if status.contains("is ready") && status.contains("512×256 px") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "status: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&client, &shots, "2-analysed").await;
    check_analysis(&client, &model, &photo, webgpu).await;
    // The analysis ran in the worker: the page itself never downloaded the models (a worker's
    // requests are in the worker's resource timeline, not the page's).
    let fetched = client
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .unwrap();
    let fetched = fetched.as_array().unwrap();
    assert!(
        fetched
            .iter()
            .any(|u| u.as_str().unwrap().ends_with(".wasm")),
        "{fetched:?}"
    );
    assert!(
        !fetched
            .iter()
            .any(|u| u.as_str().unwrap().contains("/v1/analysis-models/")),
        "the page downloaded the models itself: {fetched:?}"
    );
    // A region can be hidden from the overlay.
    let toggle = client
        .find(Locator::Css(".regions input[type=checkbox]"))
        .await
        .unwrap();
    toggle.click().await.unwrap();
    assert_eq!(
        toggle.prop("checked").await.unwrap().as_deref(),
        Some("false")
    );
    // Two faces: the highest-scoring one is chosen first; pick the other.
    assert_eq!(
        attr(&client, "#faces li.chosen", "data-box").await,
        attr(&client, "#faces li:first-child", "data-box").await
    );
    assert_eq!(
        client
            .find(Locator::Css("#face-0"))
            .await
            .unwrap()
            .prop("checked")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    client
        .find(Locator::Css("label[for=face-1]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let chosen = attr(&client, "#faces li.chosen", "data-box").await;
    assert_eq!(
        chosen,
        attr(&client, "#faces li:nth-child(2)", "data-box").await
    );
    let src = attr(&client, "#face-preview", "src").await;
    assert!(src.starts_with("blob:"), "{src}");

    set(&client, "#prompt", "a portrait, oil painting").await;
    small_settings(&client, STEPS, "32", "48").await;
    set(&client, "#merge-step", "1").await;
    set(&client, "#seed", "7").await;
    shot(&client, &shots, "3-settings").await;
    client
        .find(Locator::Css("#generate"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The prediction page: progress, previews, then the image.
    let (mut saw_progress, mut saw_preview) = (false, false);
    let start = Instant::now();
    loop {
        let url = client.current_url().await.unwrap();
        if url.path().starts_with("/p/") {
            if !saw_progress && text(&client, ".steps").await.starts_with("Step ") {
                saw_progress = true;
                shot(&client, &shots, "4-progress").await;
            }
            if !saw_preview && client.find(Locator::Css("#preview")).await.is_ok() {
                saw_preview = true;
                shot(&client, &shots, "5-preview").await;
            }
            if text(&client, "#pstatus").await == "Done." {
                break;
            }
        }
        let error = text(&client, "#error").await;
        assert!(error.is_empty(), "error shown: {error}");
        assert!(start.elapsed() < Duration::from_secs(240), "never done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        saw_progress && saw_preview,
        "progress {saw_progress}, preview {saw_preview}"
    );
    let img = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#results img"))
        .await
        .unwrap();
    let shown = img.attr("src").await.unwrap().unwrap();
    shot(&client, &shots, "6-done").await;

    // The CLI's image for the same request and seed.
    let out = tmp.path().join("cli");
    let o = Command::new(binary())
        .args(["generate", "--model"])
        .arg(&model)
        .arg("--face")
        .arg(&photo)
        .args(["--face-index", &chosen])
        .args([
            "--prompt",
            "a portrait, oil painting",
            "--steps",
            STEPS,
            "--merge-step",
            "1",
        ])
        .args(["--width", "32", "--height", "48", "--seed", "7", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = std::fs::read(out.join("7-0.png")).unwrap();
    let page_png = fetch(&shown);
    assert_eq!(pixels(&page_png), pixels(&cli));
    // The card shows the likeness the CLI wrote into its PNG ("Face similarity: 0.123").
    let cli_text = png_parameters(&cli);
    let score: f64 = cli_text
        .split("Face similarity: ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .and_then(|t| t.trim().parse().ok())
        .expect("a face similarity in the CLI's PNG");
    let likeness = text(&client, "#results .likeness").await;
    let shown_score: f64 = likeness
        .strip_prefix("Identity match ")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("card says {likeness:?}"));
    assert!(
        (shown_score - score).abs() <= 0.0051,
        "{likeness} vs {score}"
    );

    // Share, then open the link in a fresh profile.
    client
        .find(Locator::Css("#share"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let link = client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#share-url"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    shot(&client, &shots, "7-shared").await;
    // "My images" (a real address: it survives a reload) lists the prediction.
    client.goto(&format!("{}/mine", host.1)).await.unwrap();
    let mine = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#mine li a"))
        .await
        .unwrap();
    let href = mine.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.starts_with("/p/"), "{href}");
    client.close().await.unwrap();
    let fresh = browser(&driver, &tmp.path().join("profile-b"), webgpu).await;
    fresh.goto(&link).await.unwrap();
    let img = fresh
        .wait()
        .at_most(Duration::from_secs(60))
        .for_element(Locator::Css("#results img"))
        .await
        .unwrap();
    assert_eq!(img.attr("src").await.unwrap().unwrap(), shown);
    let start = Instant::now();
    while text(&fresh, "#share-seed").await != "7" {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        text(&fresh, "#share-prompt").await,
        "a portrait, oil painting"
    );
    assert_eq!(text(&fresh, "#results .likeness").await, likeness);
    // Link previews: the host fills in the OpenGraph image.
    let html = String::from_utf8(fetch(&link)).unwrap();
    assert!(html.contains("og:image") && html.contains(&shown), "{html}");
    shot(&fresh, &shots, "8-share-page").await;
    fresh.close().await.unwrap();
}
