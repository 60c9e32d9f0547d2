//! The browser's analysis benchmark (`/bench?runs=N`, driven by `scripts/bench-browser.sh`):
//! BlazeFace and BiSeNet on a fixed 512 × 512 picture, one warm-up run each (shader
//! compilation, allocations), then `runs` timed runs, results read back as the app does. Their
//! speed does not depend on the picture or on the weights' values, so a random-weight folder
//! with the real shapes measures the real thing.

use consistentid_core::image::RgbImage;
use serde::Serialize;

use super::{models, next_frame, now};

/// What `/bench` shows (as JSON) when done.
#[derive(Serialize)]
pub struct BenchResult {
    pub backend: String,
    /// Downloading and building both networks, milliseconds.
    pub load_ms: f64,
    /// First runs (shader compilation on WebGPU), milliseconds.
    pub blazeface_first_ms: f64,
    pub bisenet_first_ms: f64,
    /// The timed runs, milliseconds.
    pub blazeface_ms: Vec<f64>,
    pub bisenet_ms: Vec<f64>,
    pub user_agent: String,
}

/// A smooth, deterministic 512 × 512 picture.
fn picture() -> RgbImage {
    let side = 512;
    let data = (0..side * side)
        .flat_map(|i| {
            let (x, y) = (i % side, i / side);
            [(x / 2) as u8, (y / 2) as u8, ((x + y) / 4) as u8]
        })
        .collect();
    RgbImage {
        width: side,
        height: side,
        data,
    }
}

/// Runs the benchmark.
pub async fn run(runs: usize) -> Result<BenchResult, String> {
    let t = now();
    let m = models()
        .await?
        .ok_or("the host serves no analysis models (see consistentid fetch)")?;
    let load_ms = now() - t;
    let img = picture();
    let device = &m.backend.device;
    let mut blazeface_ms = Vec::new();
    let mut bisenet_ms = Vec::new();
    let mut first = [0.0; 2];
    for i in 0..=runs {
        next_frame().await;
        let t = now();
        m.blazeface
            .detect_async(&img)
            .await
            .map_err(|e| e.to_string())?;
        let ms = now() - t;
        if i == 0 {
            first[0] = ms;
        } else {
            blazeface_ms.push(ms);
        }
        next_frame().await;
        let t = now();
        m.bisenet
            .label_map_async(&img, device)
            .await
            .map_err(|e| e.to_string())?;
        let ms = now() - t;
        if i == 0 {
            first[1] = ms;
        } else {
            bisenet_ms.push(ms);
        }
    }
    let user_agent = leptos::web_sys::window()
        .and_then(|w| w.navigator().user_agent().ok())
        .unwrap_or_default();
    Ok(BenchResult {
        backend: m.backend.name.clone(),
        load_ms,
        blazeface_first_ms: first[0],
        bisenet_first_ms: first[1],
        blazeface_ms,
        bisenet_ms,
        user_agent,
    })
}
