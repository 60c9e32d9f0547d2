//! The host's rough edges: identity embeddings that make the image meaningless, every error as
//! problem+json (405, a duplicated query), `--rate-limit 0`, webhooks refused rather than
//! ignored, URLs that follow the address the client used, share pages with the values the job
//! ran with, and a data folder that cannot be used.

mod common;

use common::host::*;
use common::*;
use serde_json::{Value, json};

fn body(extra: Value) -> Value {
    let mut input = json!({
        "prompt": "x", "face_image": data_uri(&real_data("images/astronaut.png"), "image/png"),
        "id_embedding": vec![0.0; 512], "num_inference_steps": 1, "start_merge_step": 0,
        "width": 32, "height": 32
    });
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    json!({ "input": input })
}

/// A raw HTTP/1.1 exchange: (status, headers and body as text).
fn raw(base: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let authority = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[test]
fn rough_edges_of_the_api() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &["--rate-limit", "0"]);
    let create = host.url("/v1/predictions");

    // Identity embeddings: an absurd norm is refused; all zeros is accepted with a warning
    // that is readable at once.
    let mut huge = vec![0.0f32; 512];
    huge[0] = 1e38;
    let (code, p) = post_json(
        &create,
        Some(TOKEN),
        &body(json!({ "id_embedding": huge })),
        &[],
    );
    assert_eq!(code, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "id_embedding");
    assert!(p["detail"].as_str().unwrap().contains("norm"), "{p}");
    let (code, p) = post_json(&create, Some(TOKEN), &body(json!({})), &[]);
    assert_eq!(code, 201, "{p}");
    assert!(p["logs"].as_str().unwrap().contains("all zeros"), "{p}");
    let mut far = vec![0.0f32; 512];
    far[3] = 25.0;
    let (code, p) = post_json(
        &create,
        Some(TOKEN),
        &body(json!({ "id_embedding": far, "num_inference_steps": 2, "start_merge_step": 5 })),
        &[("Prefer", "wait=60")],
    );
    assert_eq!(code, 201, "{p}");
    let logs = p["logs"].as_str().unwrap();
    assert!(logs.contains("norm 25.000"), "{logs}");
    assert!(logs.contains("identity will not be used"), "{logs}");
    let id = p["id"].as_str().unwrap().to_string();

    // Webhooks are refused, not ignored.
    let mut with_hook = body(json!({}));
    with_hook["webhook"] = json!("https://example.com/hook");
    let (code, p) = post_json(&create, Some(TOKEN), &with_hook, &[]);
    assert_eq!(code, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "webhook");

    // 405 and a duplicated query parameter are problems like every other error.
    let (code, text) = raw(
        &host.base,
        "PUT /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 405, "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    let (code, p) = get(&host.url("/v1/predictions?cursor=1&cursor=2"), Some(TOKEN));
    assert_eq!(code, 400, "{p}");
    assert!(p["detail"].is_string(), "{p}");

    // --rate-limit 0 means no limit.
    for _ in 0..150 {
        let (code, _) = post_json(&create, Some(TOKEN), &json!({}), &[]);
        assert_eq!(code, 422);
    }

    // URLs follow the address the client used (localhost here, 127.0.0.1 elsewhere).
    let port = host.base.rsplit(':').next().unwrap();
    let (code, text) = raw(
        &host.base,
        &format!(
            "GET /v1/predictions/{id} HTTP/1.1\r\nHost: localhost:{port}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 200, "{text}");
    let json_body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let output = json_body["output"][0].as_str().unwrap();
    assert!(
        output.starts_with(&format!("http://localhost:{port}/v1/files/")),
        "{output}"
    );
    assert!(
        json_body["input"]["face_image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://localhost:{port}/")),
        "{json_body}"
    );
    assert!(
        json_body["urls"]["web"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://localhost:{port}/p/")),
        "{json_body}"
    );

    // A share shows the values the job ran with, defaulted ones included.
    let (code, share) = post_json(
        &host.url(&format!("/v1/predictions/{id}/share")),
        Some(TOKEN),
        &json!({}),
        &[],
    );
    assert_eq!(code, 201, "{share}");
    let (code, view) = get(
        &host.url(&format!(
            "/v1/shares/{}",
            share["share_id"].as_str().unwrap()
        )),
        None,
    );
    assert_eq!(code, 200, "{view}");
    assert_eq!(view["input"]["guidance_scale"], 5.0, "{view}");
    assert_eq!(view["input"]["scheduler"], "euler", "{view}");
    assert_eq!(view["input"]["num_outputs"], 1, "{view}");
    assert_eq!(view["input"]["negative_prompt"], "", "{view}");
    assert!(view["input"]["face_image"].is_null(), "{view}");
}

#[test]
fn an_unusable_data_folder_is_named_with_its_cause() {
    let model = consistentid_folder();
    let tmp = data_dir();
    // A file where the folder should be.
    let file = tmp.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_consistentid"))
        .args(["serve", "--port", "0", "--model"])
        .arg(model.path())
        .arg("--data")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.to_lowercase().contains("exists"),
        "{stderr}"
    );
    assert!(!stderr.contains("internal failure"), "{stderr}");
}

/// `GET /v1/files/{id}/faces`: the host's detector on one of the caller's uploads, as SCRFD
/// finds them (`stage detect` with the same graph), at most 20 listed; another token's upload
/// is not found; a folder without the detector says so (503).
#[test]
fn the_host_looks_for_faces_in_an_upload() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let (_, doc) = get(&host.url("/openapi.json"), None);
    let photo = real_data("images/astronaut.png");
    let (ct, body) = multipart(
        "astronaut.png",
        "image/png",
        &std::fs::read(&photo).unwrap(),
    );
    let (code, file) = post_raw(&host.url("/v1/files"), Some(TOKEN), &ct, body, &[]);
    assert_eq!(code, 201, "{file}");
    let faces_path = format!("/v1/files/{}/faces", file["id"].as_str().unwrap());
    let faces_url = host.url(&faces_path);
    // No det_10g.onnx in this folder yet.
    let (code, p) = get(&faces_url, Some(TOKEN));
    assert_eq!(code, 503, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("det_10g"), "{p}");
    drop(host);

    std::fs::copy(
        fixture("onnx/scrfd_tiny_det.onnx"),
        model.path().join("det_10g.onnx"),
    )
    .unwrap();
    let host = Host::start(model.path(), data.path(), &[]);
    let faces_url = host.url(&faces_path);
    let (code, found) = get(&faces_url, Some(TOKEN));
    assert_eq!(code, 200, "{found}");
    common::openapi::check_response(&doc, "get", "/v1/files/{id}/faces", 200, &found);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("faces.safetensors");
    let detector = format!("{}", model.path().join("det_10g.onnx").display());
    let o = run(&[
        "stage",
        "detect",
        "--detector",
        "scrfd",
        "--weights",
        &detector,
        "--image",
        photo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let stage = consistentid_core::tensor_io::TensorFile::parse("faces", &bytes).unwrap();
    let (boxes, shape) = stage.f32("boxes").unwrap();
    assert_eq!(found["found"].as_u64().unwrap() as usize, shape[0]);
    let listed = found["faces"].as_array().unwrap();
    assert_eq!(listed.len(), shape[0].min(20));
    for (i, face) in listed.iter().enumerate() {
        for k in 0..4 {
            let got = face["bbox"][k].as_f64().unwrap() as f32;
            assert!(
                (got - boxes[i * shape[1] + k]).abs() < 1e-3,
                "face {i}: {face}"
            );
        }
    }
    let (code, _) = get(&faces_url, Some("someone-else"));
    assert_eq!(code, 404);
}
