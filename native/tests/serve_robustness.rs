//! The host under bad input and load: every refusal is a 4xx problem+json and the host keeps
//! serving; a full queue is 429 with Retry-After; 50 concurrent clients are all answered
//! with bounded memory; the rate limit holds.

mod common;

use common::host::*;
use common::openapi::check_response;
use common::*;
use serde_json::{Value, json};

fn face_uri() -> String {
    data_uri(&real_data("images/astronaut.png"), "image/png")
}

/// A PNG of `w`×`h` (1-bit greyscale: tiny on disk, huge decoded).
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&vec![0u8; (w as usize).div_ceil(8) * h as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

#[test]
fn bad_input_is_refused_with_problems_and_the_host_keeps_serving() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &["--max-upload-mb", "8"]);
    let (_, doc) = get(&host.url("/openapi.json"), None);
    let create = host.url("/v1/predictions");
    let refuse = |body: &[u8], ctype: &str, token: Option<&str>, want: u16| -> Value {
        let (code, problem) = post_raw(&create, token, ctype, body.to_vec(), &[]);
        assert_eq!(code, want, "{problem}");
        assert_eq!(problem["status"], want);
        check_response(&doc, "post", "/v1/predictions", want, &problem);
        problem
    };
    let input = |extra: Value| -> Vec<u8> {
        let mut i = json!({ "prompt": "a portrait", "face_image": face_uri() });
        for (k, v) in extra.as_object().unwrap() {
            i[k] = v.clone();
        }
        json!({ "input": i }).to_string().into_bytes()
    };
    let fields = |p: &Value| -> Vec<String> {
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_string())
            .collect()
    };

    refuse(b"{\"input\": {", "application/json", Some(TOKEN), 400);
    refuse(
        b"{\"input\": {\"prompt\": NaN}}",
        "application/json",
        Some(TOKEN),
        400,
    );
    refuse(&input(json!({})), "application/json", None, 401);
    refuse(&input(json!({})), "text/plain", Some(TOKEN), 415);
    let p = refuse(
        &input(json!({ "width": "wide", "num_outputs": -1, "steps": 5, "guidance_scale": 1e300 })),
        "application/json",
        Some(TOKEN),
        422,
    );
    let mut f = fields(&p);
    f.sort();
    assert_eq!(f, ["num_outputs", "steps", "width"], "{p}");
    let p = refuse(
        &input(
            json!({ "width": 100000, "height": 99999, "num_inference_steps": 0, "guidance_scale": 1e300 }),
        ),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert_eq!(
        fields(&p),
        ["width", "height", "num_inference_steps", "guidance_scale"],
        "{p}"
    );
    let p = refuse(
        &input(json!({ "prompt": "é".repeat(10_000) })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert_eq!(fields(&p), ["prompt"]);
    let p = refuse(
        &input(json!({ "id_embedding": [1.0, 2.0] })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert_eq!(fields(&p), ["id_embedding"]);
    let p = refuse(
        &input(json!({ "id_embedding": vec![1e39; 512] })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert_eq!(fields(&p), ["id_embedding"], "f32 overflow is not finite");
    let p = refuse(
        &input(json!({ "face_image": "http://169.254.169.254/latest" })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert!(p["detail"].as_str().unwrap().contains("not fetched"), "{p}");
    let p = refuse(
        &input(json!({ "face_image": "data:image/png;base64,aGVsbG8=" })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert_eq!(fields(&p), ["face_image"]);
    // A decompression bomb: 56 million pixels in a few kB.
    use base64::Engine as _;
    let bomb = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png(8000, 7000))
    );
    let p = refuse(
        &input(json!({ "face_image": bomb })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert!(
        p["detail"].as_str().unwrap().contains("megapixels")
            || p["detail"].as_str().unwrap().contains("pixels"),
        "{p}"
    );
    // A label map with a value outside BiSeNet's classes.
    let mut labels = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut labels, 512, 512);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![19u8; 512 * 512]).unwrap();
        w.finish().unwrap();
    }
    let map = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&labels)
    );
    let p = refuse(
        &input(json!({ "face_parsing": map })),
        "application/json",
        Some(TOKEN),
        422,
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("not a BiSeNet class"),
        "{p}"
    );

    // Uploads: too large, not an image, no token.
    let upload = host.url("/v1/files");
    let (ct, body) = multipart("big.png", "image/png", &vec![7u8; 20 * 1024 * 1024]);
    let (code, text) = post_expect_continue(&upload, TOKEN, &ct, &body);
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    let p: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    check_response(&doc, "post", "/v1/files", 413, &p);
    let (ct, body) = multipart("notes.txt", "text/plain", b"not an image at all");
    let (code, p) = post_raw(&upload, Some(TOKEN), &ct, body, &[]);
    assert_eq!(code, 415, "{p}");
    let (code, _) = post_raw(
        &upload,
        Some(TOKEN),
        "application/json",
        b"{}".to_vec(),
        &[],
    );
    assert_eq!(code, 415);

    // Ids are never paths.
    for path in [
        "/v1/predictions/..%2F..%2Fetc%2Fpasswd",
        "/v1/predictions/../../etc/passwd",
        "/v1/files/..%2Fconsistentid.sqlite3",
        "/v1/shares/abc",
        "/%2e%2e/Cargo.toml",
        "/../Cargo.toml",
    ] {
        let (code, _) = get(&host.url(path), Some(TOKEN));
        assert_eq!(code, 404, "{path}");
    }

    // Unicode is fine, and the host still works.
    let (code, ok) = post_json(
        &create,
        Some(TOKEN),
        &json!({ "input": { "prompt": "портрет 🌸 — ‘quoted’", "face_image": face_uri(), "id_embedding": vec![0.0; 512], "num_inference_steps": 1, "width": 32, "height": 32 } }),
        &[("Prefer", "wait=60")],
    );
    assert_eq!(code, 201, "{ok}");
    assert_eq!(ok["input"]["prompt"], "портрет 🌸 — ‘quoted’");
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let (code, health) = get(&host.url("/v1/health"), None);
    assert_eq!((code, health["status"].as_str()), (200, Some("ready")));

    // Security headers everywhere.
    let resp = agent().get(&host.url("/v1/health")).call().unwrap();
    let h = resp.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(h.get("access-control-allow-origin").is_none());

    // 50 concurrent clients, all answered; memory stays bounded.
    let before = host.rss_kb();
    let id = ok["id"].as_str().unwrap().to_string();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let base = host.base.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                let (a, _) = get(&format!("{base}/v1/health"), None);
                let (b, _) = get(&format!("{base}/v1/predictions/{id}"), Some(TOKEN));
                let events = read_events(&format!("{base}/v1/predictions/{id}/events"), None, 20);
                let (c, _) = get(
                    &format!("{base}/v1/predictions"),
                    Some(&format!("client-{i}")),
                );
                (a, b, c, events.last().map(|e| e.event.clone()))
            })
        })
        .collect();
    for t in threads {
        let (a, b, c, last) = t.join().unwrap();
        assert_eq!((a, b, c), (200, 200, 200));
        assert_eq!(last.as_deref(), Some("completed"));
    }
    let after = host.rss_kb();
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
}

#[test]
fn a_full_queue_and_a_fast_client_get_429() {
    // A host whose models cannot load refuses new jobs.
    let data = data_dir();
    let missing = data.path().join("no-model");
    let broken = Host::start(&missing, data.path(), &["--no-fetch"]);
    let health = broken.wait_health("failed");
    let detail = health["detail"].as_str().unwrap();
    assert!(detail.contains("no model folder"), "{health}");
    let (code, p) = post_json(&broken.url("/v1/predictions"), Some(TOKEN), &json!({}), &[]);
    assert_eq!(code, 503, "{p}");
    drop(broken);
    // Paused: jobs wait, so the queue fills.
    let model = consistentid_folder();
    let host = Host::start(
        model.path(),
        data.path(),
        &[
            "--paused",
            "--queue-size",
            "2",
            "--owner-queue",
            "2",
            "--rate-limit",
            "6",
        ],
    );
    host.wait_health("ready");
    let body =
        json!({ "input": { "prompt": "x", "face_image": face_uri(), "width": 32, "height": 32 } });
    let create = host.url("/v1/predictions");
    for _ in 0..2 {
        let (code, p) = post_json(&create, Some(TOKEN), &body, &[]);
        assert_eq!(code, 201, "{p}");
        assert_eq!(p["status"], "starting");
    }
    let resp = agent()
        .post(&create)
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .content_type("application/json")
        .send(body.to_string())
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let (_, health) = get(&host.url("/v1/health"), None);
    assert_eq!(health["queue_length"], 2);
    // Queue positions are reported.
    let (_, page) = get(&host.url("/v1/predictions"), Some(TOKEN));
    let positions: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["queue_position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 0]);
    // The rate limit (6 per minute): this client has used 3; the 4th to 6th pass, then 429.
    for _ in 0..3 {
        let (code, _) = post_json(&create, Some(TOKEN), &json!({}), &[]);
        assert_ne!(code, 429);
    }
    let (code, p) = post_json(&create, Some(TOKEN), &json!({}), &[]);
    assert_eq!(code, 429, "{p}");
    // API keys: only listed tokens may create.
    drop(host);
    let keyed = Host::start(
        model.path(),
        data.path(),
        &[
            "--paused",
            "--api-key",
            "k-1",
            "--cors-origin",
            "https://app.example",
        ],
    );
    // CORS only for the listed origin.
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let resp = agent()
            .get(&keyed.url("/v1/health"))
            .header("Origin", origin)
            .call()
            .unwrap();
        assert_eq!(
            resp.headers().get("access-control-allow-origin").is_some(),
            allowed,
            "{origin}"
        );
    }
    let (code, _) = post_json(&keyed.url("/v1/predictions"), Some(TOKEN), &body, &[]);
    assert_eq!(code, 403);
    let (code, p) = post_json(&keyed.url("/v1/predictions"), Some("k-1"), &body, &[]);
    assert_eq!(code, 201, "{p}");
}
