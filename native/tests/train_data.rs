//! `consistentid dataset build` against the OFFICIAL FGID scripts (tests/scripts/
//! gen_dataset_build.py: `FGID_mask.py`, `FGID_faceid_embeds.py`, `FGID_fuse_JSON.py` from the
//! checkout, with the replica BiSeNet, SCRFD and ArcFace, and a fixed caption file) on the real
//! astronaut, Grace Hopper and a plain gradient: the same JSON records, the same resized photos,
//! label maps and colour overlays bit for bit, the same identities; then resume, bad photos,
//! `--strict`, and a captioner over HTTP. (The tiny replica cannot train at the dataset's
//! 512²: its 2-level VAE attends over 256² pixels; train.rs trains on 40² records.)

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{fixture, max_abs, png_pixels, real_data};
use consistentid_core::tensor_io::TensorFile;
use consistentid_core::weights::torch_file;
use sha2::{Digest, Sha256};

/// A model folder with the replica BiSeNet and buffalo_l.
fn face_models(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    for (from, to) in [
        ("bisenet_tiny/face_parsing.pth", "face_parsing.pth"),
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
    ] {
        std::fs::copy(fixture(from), m.join(to)).unwrap();
    }
    m
}

/// The fixture script's three photos under `dir/people`.
fn photos(dir: &Path) -> PathBuf {
    let people = dir.join("photos/people");
    std::fs::create_dir_all(&people).unwrap();
    std::fs::copy(
        real_data("images/astronaut.png"),
        people.join("astronaut.png"),
    )
    .unwrap();
    std::fs::copy(
        fixture("jpeg/grace_hopper.png"),
        people.join("grace_hopper.png"),
    )
    .unwrap();
    let plain = image::RgbImage::from_fn(96, 64, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, (x + y) as u8])
    });
    plain.save(people.join("plain.png")).unwrap();
    dir.join("photos")
}

fn build(images: &Path, out: &Path, model: &Path, extra: &[&str]) -> (bool, String) {
    let output = common::bin()
        .args(["--device", "cpu", "dataset", "build", "--images"])
        .arg(images)
        .arg("--out")
        .arg(out)
        .arg("--model")
        .arg(model)
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn identity(path: &Path) -> Vec<f32> {
    let tensors = torch_file::read(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(tensors[0].1.shape, vec![1, 512], "{}", path.display());
    tensors[0].1.data.clone()
}

#[test]
fn dataset_build_equals_the_official_fgid_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let model = face_models(tmp.path());
    let images = photos(tmp.path());
    let ds = tmp.path().join("ds");
    let captions = fixture("dataset_build/captions.json");
    let captions = captions.to_str().unwrap();
    let (ok, stderr) = build(&images, &ds, &model, &["--captions", captions]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("3 records"), "{stderr}");
    // The random replica BiSeNet finds no background anywhere: named, as trainers skip such
    // records (train.rs checks the skipping).
    assert!(stderr.contains("no background in 3 photos"), "{stderr}");

    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("dataset_build/expected.json")).unwrap(),
    )
    .unwrap();
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ds.join("JSON_all.json")).unwrap()).unwrap();
    assert_eq!(got, expected["records"], "the training JSON");

    let ids_bytes = std::fs::read(fixture("dataset_build/expected.safetensors")).unwrap();
    let ids = TensorFile::parse("ids", &ids_bytes).unwrap();
    for record in got.as_array().unwrap() {
        let stem = Path::new(record["origin_IMG"].as_str().unwrap())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let want = &expected["photos"][&stem];
        let labels = png_pixels(&ds.join(record["parsing_mask_IMG"].as_str().unwrap()));
        let mut counts = vec![0u64; 19];
        for &l in &labels {
            counts[usize::from(l)] += 1;
        }
        assert_eq!(serde_json::json!(counts), want["label_counts"], "{stem}");
        for (key, name) in [
            ("resize_IMG", "resize"),
            ("parsing_mask_IMG", "mask"),
            ("parsing_color_IMG", "color"),
        ] {
            let pixels = png_pixels(&ds.join(record[key].as_str().unwrap()));
            assert_eq!(sha(&pixels), want[name], "{stem} {name}");
        }
        for (key, name) in [
            ("id_embed_file_resize", "id_resize"),
            ("id_embed_file_origin", "id_origin"),
        ] {
            let got = identity(&ds.join(record[key].as_str().unwrap()));
            let (want, _) = ids.f32(&format!("{stem}.{name}")).unwrap();
            let err = max_abs(&got, &want);
            assert!(err < 1e-4, "{stem} {name}: max abs error {err}");
        }
    }

    // A re-run prepares nothing; a broken photo is named and skipped, or stops --strict.
    let before = std::fs::metadata(ds.join("people/astronaut_mask.png"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::write(
        images.join("people/broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let (ok, stderr) = build(&images, &ds, &model, &["--captions", captions]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("0 prepared now, 3 from an earlier run, 1 skipped"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped people/broken.png"), "{stderr}");
    let after = std::fs::metadata(ds.join("people/astronaut_mask.png"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "a finished photo was prepared again");
    let (ok, stderr) = build(&images, &ds, &model, &["--captions", captions, "--strict"]);
    assert!(!ok && stderr.contains("people/broken.png"), "{stderr}");
    std::fs::remove_file(images.join("people/broken.png")).unwrap();

    // A photo the caption file does not know is skipped with the reason.
    std::fs::copy(
        images.join("people/plain.png"),
        images.join("people/other.png"),
    )
    .unwrap();
    let (ok, stderr) = build(&images, &ds, &model, &["--captions", captions]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("skipped people/other.png: no captions for it"),
        "{stderr}"
    );
}

/// One HTTP exchange of a tiny OpenAI-compatible server: the request's JSON body, answered
/// with a caption naming the prompt's first word.
fn serve_one(stream: std::net::TcpStream, seen: &Mutex<Vec<serde_json::Value>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let prompt = request["messages"][0]["content"][1]["text"]
        .as_str()
        .unwrap()
        .to_string();
    seen.lock().unwrap().push(request);
    let first = prompt.split(' ').next().unwrap();
    let answer = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": format!(" Said to {first}. ")}}]}).to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )
    .unwrap();
}

#[test]
fn a_captioner_is_asked_the_official_prompts() {
    let tmp = tempfile::tempdir().unwrap();
    let model = face_models(tmp.path());
    let images = tmp.path().join("photos");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 4, 90]))
        .save(images.join("one.png"))
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                serve_one(stream, &seen);
            }
        })
    };
    let ds = tmp.path().join("ds");
    let (ok, stderr) = build(
        &images,
        &ds,
        &model,
        &["--captioner", &url, "--captioner-model", "llava-v1.5-7b"],
    );
    assert!(ok, "{stderr}");
    server.join().unwrap();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ds.join("one.json")).unwrap()).unwrap();
    assert_eq!(record["vqa_llva"], "Said to Please.");
    assert_eq!(record["vqa_llva_more_face_detail"], "Said to Describe.");
    let seen = seen.lock().unwrap();
    let photo = std::fs::read(images.join("one.png")).unwrap();
    use base64::Engine as _;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&photo)
    );
    let prompts = [
        "Please describe the people in the image, including their gender,         age, clothing, facial expressions, and any other distinguishing features.",
        "Describe this person's facial features for me, including         face, ears, eyes, nose, and mouth.",
    ];
    for (request, prompt) in seen.iter().zip(prompts) {
        assert_eq!(request["model"], "llava-v1.5-7b");
        assert_eq!(request["temperature"], 0);
        assert_eq!(request["max_tokens"], 512);
        let content = &request["messages"][0]["content"];
        assert_eq!(content[0]["image_url"]["url"], uri.as_str());
        assert_eq!(content[1]["text"], prompt);
    }
}
