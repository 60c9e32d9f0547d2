//! The browser benchmark's driver (`scripts/bench-browser.sh` runs it): `consistentid serve`
//! with a model folder holding the two analysis models, then the app's `/bench` page in headless
//! Chromium twice, with WebGPU (`--enable-unsafe-webgpu`: SwiftShader on a machine without a GPU,
//! the real adapter on one with) and without (the CPU fallback), plus the size of each wasm file
//! of the web app, raw and gzipped. Prints one JSON object.
//!
//! `browser_bench --model DIR --dist DIR [--runs N]`

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use consistentid_tests::browser::{Driver, Host, browser};
use fantoccini::Locator;
use serde_json::{Value, json};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Raw and gzipped (level 9) sizes of every `.wasm` in `dist`.
fn wasm_sizes(dist: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dist).expect("the web app's folder") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_some_and(|e| e == "wasm") {
            let bytes = std::fs::read(&path).expect("the wasm file");
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&bytes).expect("gzip in memory");
            let gzipped = gz.finish().expect("gzip in memory").len();
            out.push(json!({
                "file": path.file_name().map(|f| f.to_string_lossy().into_owned()),
                "bytes": bytes.len(),
                "gzip_bytes": gzipped,
            }));
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(dist)) = (arg(&args, "--model"), arg(&args, "--dist")) else {
        eprintln!("usage: browser_bench --model DIR --dist DIR [--runs N]");
        std::process::exit(2);
    };
    let runs = arg(&args, "--runs").unwrap_or_else(|| "5".into());
    let (model, dist) = (PathBuf::from(model), PathBuf::from(dist));
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let tmp = scratch.path();
    let host = Host::start(&model, &tmp.join("data"), &dist);
    let driver = Driver::start();
    let mut results = Vec::new();
    for (mode, webgpu) in [("webgpu", true), ("cpu", false)] {
        let client = browser(&driver, &tmp.join(format!("profile-{mode}")), webgpu).await;
        client
            .goto(&format!("{}/bench?runs={runs}", host.1))
            .await
            .expect("the bench page");
        let found = client
            .wait()
            .at_most(Duration::from_secs(3600))
            .for_element(Locator::Css("#bench-json, #error"))
            .await
            .expect("the benchmark finishes");
        let text = found.text().await.unwrap_or_default();
        let mut value: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text }));
        value["mode"] = json!(mode);
        eprintln!("{mode}: {value}");
        results.push(value);
        client.close().await.expect("close the browser");
    }
    let report = json!({ "runs": results, "wasm": wasm_sizes(&dist) });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("JSON out")
    );
    drop(host);
}
