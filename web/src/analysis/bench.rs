//! The browser's analysis benchmark (`/bench?runs=N`, driven by `scripts/bench-browser.sh`; run
//! in the analysis worker, as the analysis):
//! BlazeFace and BiSeNet on a fixed 512 × 512 picture, one warm-up run each (shader
//! compilation, allocations), then `runs` timed runs, results read back as the app does. Their
//! speed does not depend on the picture or on the weights' values, so a random-weight folder
//! with the real shapes measures the real thing.

use consistentid_core::image::RgbImage;
use serde::Serialize;

use super::models;
use super::scope::{now, yield_now};

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

/// Milliseconds `step` takes, started after a turn of the event loop.
async fn timed<T, E: ToString>(step: impl Future<Output = Result<T, E>>) -> Result<f64, String> {
    yield_now().await;
    let t = now();
    step.await.map_err(|e| e.to_string())?;
    Ok(now() - t)
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
    // Run 0 of each is the warm-up.
    let (mut blazeface_ms, mut bisenet_ms) = (Vec::new(), Vec::new());
    for _ in 0..=runs {
        blazeface_ms.push(timed(m.blazeface.detect_async(&img)).await?);
        bisenet_ms.push(timed(m.bisenet.label_map_async(&img, device)).await?);
    }
    let (blazeface_first_ms, bisenet_first_ms) = (blazeface_ms.remove(0), bisenet_ms.remove(0));
    let user_agent = match super::scope::scope() {
        Ok(super::scope::Scope::Window(w)) => w.navigator().user_agent().ok(),
        Ok(super::scope::Scope::Worker(w)) => w.navigator().user_agent().ok(),
        Err(_) => None,
    }
    .unwrap_or_default();
    Ok(BenchResult {
        backend: m.backend.name.clone(),
        load_ms,
        blazeface_first_ms,
        bisenet_first_ms,
        blazeface_ms,
        bisenet_ms,
        user_agent,
    })
}
