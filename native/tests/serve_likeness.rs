//! Every portrait carries its likeness to the face (`face_similarity`, the ArcFace cosine), over
//! real HTTP: in the prediction's `output_metadata`, the SSE `output` events, the PNG's
//! parameters and the share view, each checked against the served OpenAPI document and against
//! the cosine of the embeddings `stage arcface` computes for the two images. `best_of` makes N
//! candidates and keeps the most alike, best first, listing every candidate's score.

mod common;

use common::host::*;
use common::openapi::{check_response, validate};
use common::*;
use consistentid_core::tensor_io::TensorFile;
use serde_json::{Value, json};

/// The replica buffalo_l graphs (random weights: SCRFD finds "faces" in any image).
const DETECTOR: &str = "onnx/scrfd_tiny_det.onnx";
const RECOGNISER: &str = "onnx/iresnet_tiny_512.onnx";

/// `stage arcface`'s normed embedding of the best face of `image`.
fn embedding(image: &std::path::Path, tmp: &std::path::Path) -> Vec<f32> {
    let out = tmp.join("emb.safetensors");
    let landmarks = format!("scrfd:{}", fixture(DETECTOR).display());
    let o = run(&[
        "stage",
        "arcface",
        "--weights",
        fixture(RECOGNISER).to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--landmarks-from",
        &landmarks,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = read_out(&out);
    let file = TensorFile::parse("emb", &bytes).unwrap();
    file.f32("normed_embedding").unwrap().0
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn score(v: &Value) -> f64 {
    v["face_similarity"]
        .as_f64()
        .unwrap_or_else(|| panic!("no score in {v}"))
}

#[test]
fn every_portrait_carries_its_likeness_and_best_of_keeps_the_most_alike() {
    let model = consistentid_folder();
    for (from, to) in [(DETECTOR, "det_10g.onnx"), (RECOGNISER, "w600k_r50.onnx")] {
        std::fs::copy(fixture(from), model.path().join(to)).unwrap();
    }
    let data = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let face = real_data("images/astronaut.png");
    let host = Host::start(model.path(), data.path(), &[]);
    let (_, doc) = get(&host.url("/openapi.json"), None);
    let input = json!({
        "prompt": "a portrait", "face_image": data_uri(&face, "image/png"),
        "num_inference_steps": 2, "start_merge_step": 1, "width": 32, "height": 48,
        "seed": 5, "num_outputs": 2, "best_of": 3
    });
    let (code, p) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "input": input }),
        &[("Prefer", "wait")],
    );
    assert_eq!(
        (code, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
    check_response(&doc, "post", "/v1/predictions", 201, &p);

    // Three candidates from consecutive seeds; the two most alike kept, best first.
    let candidates = p["candidates"].as_array().expect("candidates");
    let seeds: Vec<u64> = candidates
        .iter()
        .map(|c| c["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [5, 6, 7]);
    let kept: Vec<&Value> = candidates.iter().filter(|c| c["kept"] == true).collect();
    assert_eq!(kept.len(), 2, "{p}");
    let dropped = candidates.iter().find(|c| c["kept"] == false).unwrap();
    let meta = p["output_metadata"].as_array().expect("output_metadata");
    let outputs = p["output"].as_array().unwrap();
    assert_eq!((meta.len(), outputs.len()), (2, 2));
    assert!(score(&meta[0]) >= score(&meta[1]) && score(&meta[1]) >= score(dropped));
    for m in meta {
        let c = kept
            .iter()
            .find(|c| c["seed"] == m["seed"])
            .expect("a kept seed");
        assert_eq!(c["face_similarity"], m["face_similarity"]);
    }

    // Each score is the cosine of the two images' embeddings, as `stage arcface` gives them.
    let reference = embedding(&face, tmp.path());
    for (m, url) in meta.iter().zip(outputs) {
        let (_, _, png) = get_bytes(url.as_str().unwrap(), None);
        let path = tmp.path().join("out.png");
        std::fs::write(&path, &png).unwrap();
        let want = cosine(&reference, &embedding(&path, tmp.path()));
        assert!((score(m) as f32 - want).abs() < 1e-4, "{m} vs {want}");
        let (_, parameters) = png_parameters(&path);
        assert!(
            parameters.contains(&format!("Face similarity: {:.3}", score(m)))
                && parameters.contains(&format!("Seed: {}", m["seed"]))
                && parameters.contains("Best of: 3"),
            "{parameters}"
        );
    }

    // The stream: every candidate's score before the kept images, each with its score.
    let events = read_events(p["urls"]["stream"].as_str().unwrap(), None, 100);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let first_output = names.iter().position(|n| *n == "output").expect("output");
    let listed = names
        .iter()
        .position(|n| *n == "candidates")
        .expect("candidates");
    assert!(listed < first_output, "{names:?}");
    let streamed: Vec<&Value> = events
        .iter()
        .filter(|e| e.event == "output")
        .map(|e| &e.data)
        .collect();
    assert_eq!(streamed.len(), 2);
    for (e, m) in streamed.iter().zip(meta) {
        assert_eq!(
            (&e["seed"], &e["face_similarity"]),
            (&m["seed"], &m["face_similarity"])
        );
        let s = json!({ "$ref": "#/components/schemas/OutputEvent" });
        validate(&doc, &s, e, "output").unwrap();
    }
    let s = json!({ "$ref": "#/components/schemas/CandidatesEvent" });
    validate(&doc, &s, &events[listed].data, "candidates").unwrap();

    // The share view shows the scores (never the face).
    let id = p["id"].as_str().unwrap();
    let (code, share) = post_raw(
        &host.url(&format!("/v1/predictions/{id}/share")),
        Some(TOKEN),
        "application/json",
        Vec::new(),
        &[],
    );
    assert_eq!(code, 201, "{share}");
    let share_id = share["share_id"].as_str().unwrap();
    let (code, view) = get(&host.url(&format!("/v1/shares/{share_id}")), None);
    assert_eq!(code, 200);
    check_response(&doc, "get", "/v1/shares/{share_id}", 200, &view);
    assert_eq!(view["output_metadata"].as_array().unwrap(), meta);
    assert!(view["input"].get("face_image").is_none());

    // best_of needs at least num_outputs candidates: a field error before any compute.
    let (code, problem) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "input": { "prompt": "x", "face_image": data_uri(&face, "image/png"),
                            "num_outputs": 3, "best_of": 2 } }),
        &[],
    );
    assert_eq!(code, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "best_of", "{problem}");
}
