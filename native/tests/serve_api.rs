//! `consistentid serve` over real HTTP on the tiny model folder: a prediction's events arrive
//! in order and its image equals the CLI's; `Prefer: wait`, listing, sharing, deleting; the
//! uploaded face is gone after the job; every response validates against /openapi.json; the
//! browser's label map and face choice.

mod common;

use std::path::Path;

use common::host::*;
use common::openapi::check_response;
use common::*;
use consistentid_core::tensor_io::TensorFile;
use serde_json::{Value, json};

const PROMPT: &str = "a woman’s portrait, 日本の庭園 ✨";

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(bytes).unwrap().to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

fn png_text(bytes: &[u8]) -> String {
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    reader
        .info()
        .utf8_text
        .iter()
        .find(|t| t.keyword == "parameters")
        .unwrap()
        .get_text()
        .unwrap()
}

/// The CLI's image for the same request.
fn cli_image(model: &Path, out: &Path) -> Vec<u8> {
    let emb = fixture("consistentid_pipeline/expected.safetensors");
    let face = real_data("images/astronaut.png");
    let o = run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--id-embedding",
        emb.to_str().unwrap(),
        "--prompt",
        PROMPT,
        "--steps",
        "3",
        "--merge-step",
        "1",
        "--width",
        "48",
        "--height",
        "64",
        "--seed",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(out.join("7-0.png")).unwrap()
}

#[test]
fn a_prediction_streams_its_events_and_equals_the_cli_image() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let (code, doc) = get(&host.url("/openapi.json"), None);
    assert_eq!(code, 200);
    let health = host.wait_health("ready");
    check_response(&doc, "get", "/v1/health", 200, &health);
    assert_eq!(health["device"], "cpu");

    // Upload the face as Replicate's files API does.
    let face = std::fs::read(real_data("images/astronaut.png")).unwrap();
    let (ct, body) = multipart("astronaut.png", "image/png", &face);
    let (code, file) = post_raw(&host.url("/v1/files"), Some(TOKEN), &ct, body, &[]);
    assert_eq!(code, 201, "{file}");
    check_response(&doc, "post", "/v1/files", 201, &file);
    let face_url = file["urls"]["get"].as_str().unwrap().to_string();

    let input = json!({
        "prompt": PROMPT, "face_image": face_url, "id_embedding": id_embedding(),
        "num_inference_steps": 3, "start_merge_step": 1, "width": 48, "height": 64, "seed": 7
    });
    let (code, created) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &json!({ "version": "v1", "input": input }),
        &[],
    );
    assert_eq!(code, 201, "{created}");
    check_response(&doc, "post", "/v1/predictions", 201, &created);
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 26);
    assert_eq!(created["version"], "v1");
    assert_eq!(created["input"]["seed"], 7);
    assert!(matches!(
        created["status"].as_str(),
        Some("starting" | "processing")
    ));

    // The whole story, in order.
    let events = read_events(created["urls"]["stream"].as_str().unwrap(), None, 500);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    let steps: Vec<u64> = events
        .iter()
        .filter(|e| e.event == "progress" && e.data["phase"] == "denoise" && e.data["total"] == 3)
        .map(|e| e.data["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3], "{names:?}");
    let preview = events
        .iter()
        .position(|e| e.event == "preview")
        .expect("a preview");
    let output = events
        .iter()
        .position(|e| e.event == "output")
        .expect("an output");
    assert!(preview < output && output < events.len() - 1, "{names:?}");
    assert!(
        events[preview].data["data_uri"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for e in &events {
        if e.event != "completed" {
            let schema = match e.event.as_str() {
                "status" => "StatusEvent",
                "progress" => "ProgressEvent",
                "preview" => "PreviewEvent",
                "output" => "OutputEvent",
                _ => continue,
            };
            let s = json!({ "$ref": format!("#/components/schemas/{schema}") });
            common::openapi::validate(&doc, &s, &e.data, schema).unwrap();
        }
    }
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "succeeded", "{done}");
    // The stream is public (the id is the capability): no face in it.
    assert!(
        done["input"].get("face_image").is_none() && done["input"].get("id_embedding").is_none()
    );

    // Reconnecting with Last-Event-ID resumes after that event.
    let from = events[output].id.clone().unwrap();
    let rest = read_events(created["urls"]["stream"].as_str().unwrap(), Some(&from), 50);
    assert_eq!(rest.first().map(|e| e.event.as_str()), Some("completed"));

    let (code, got) = get(&host.url(&format!("/v1/predictions/{id}")), Some(TOKEN));
    assert_eq!(code, 200);
    check_response(&doc, "get", "/v1/predictions/{id}", 200, &got);
    assert_eq!(got["status"], "succeeded");
    assert!(got["metrics"]["predict_time"].as_f64().unwrap() > 0.0);
    assert!(got["metrics"]["denoise_time"].as_f64().unwrap() > 0.0);
    let url = got["output"][0].as_str().unwrap();
    assert!(url.starts_with(&host.base), "{url}");
    let (code, ctype, png) = get_bytes(url, None);
    assert_eq!((code, ctype.as_str()), (200, "image/png"));

    // Pixel-equal to the CLI, with the same parameters text.
    let out = tempfile::tempdir().unwrap();
    let cli = cli_image(model.path(), out.path());
    assert_eq!(decode_png(&png), decode_png(&cli));
    assert_eq!(png_text(&png), png_text(&cli));

    // The uploaded face was deleted when the job ended.
    let (code, _) = get(&face_url, Some(TOKEN));
    assert_eq!(code, 404);

    // Prefer: wait answers with the finished prediction (a data-URI face this time).
    let input = json!({
        "prompt": "x", "face_image": data_uri(&real_data("images/astronaut.png"), "image/png"),
        "id_embedding": id_embedding(), "num_inference_steps": 2, "start_merge_step": 0,
        "width": 32, "height": 32
    });
    let (code, waited) = post_json(
        &host.url("/v1/models/someone/consistentid/predictions"),
        Some(TOKEN),
        &json!({ "input": input }),
        &[("Prefer", "wait=60")],
    );
    assert_eq!(code, 201, "{waited}");
    check_response(
        &doc,
        "post",
        "/v1/models/{owner}/{name}/predictions",
        201,
        &waited,
    );
    assert_eq!(waited["status"], "succeeded", "{waited}");
    assert_eq!(waited["model"], "someone/consistentid");
    assert!(
        waited["input"]["seed"].as_u64().is_some(),
        "the drawn seed is echoed"
    );
    assert!(
        waited["input"]["face_image"]
            .as_str()
            .unwrap()
            .contains("/v1/files/")
    );

    // Listing: the owner's only, newest first.
    let (code, page) = get(&host.url("/v1/predictions"), Some(TOKEN));
    assert_eq!(code, 200);
    check_response(&doc, "get", "/v1/predictions", 200, &page);
    let listed: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [waited["id"].as_str().unwrap(), id.as_str()]);
    let (_, other) = get(&host.url("/v1/predictions"), Some("someone-else"));
    assert_eq!(other["results"].as_array().unwrap().len(), 0);
    // Others cannot cancel, share or delete; without a token the id shows no face.
    let (code, _) = post_json(
        &host.url(&format!("/v1/predictions/{id}/share")),
        Some("someone-else"),
        &json!({}),
        &[],
    );
    assert_eq!(code, 404);
    assert_eq!(
        delete(
            &host.url(&format!("/v1/predictions/{id}")),
            Some("someone-else")
        ),
        404
    );
    let (code, public) = get(&host.url(&format!("/v1/predictions/{id}")), None);
    assert_eq!(code, 200);
    assert!(public["input"].get("id_embedding").is_none());

    // Sharing: a separate id, readable without a token, revocable.
    let (code, share) = post_raw(
        &host.url(&format!("/v1/predictions/{id}/share")),
        Some(TOKEN),
        "application/json",
        Vec::new(),
        &[],
    );
    assert_eq!(code, 201, "{share}");
    check_response(&doc, "post", "/v1/predictions/{id}/share", 201, &share);
    let share_id = share["share_id"].as_str().unwrap();
    assert_ne!(share_id, id);
    let (code, view) = get(&host.url(&format!("/v1/shares/{share_id}")), None);
    assert_eq!(code, 200);
    check_response(&doc, "get", "/v1/shares/{share_id}", 200, &view);
    assert_eq!(view["output"][0], got["output"][0]);
    assert_eq!(view["input"]["prompt"], PROMPT);
    assert!(view["input"].get("face_image").is_none());
    let (code, _, page) = get_bytes(share["url"].as_str().unwrap(), None);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("og:image") && page.contains(url), "{page}");
    assert_eq!(
        delete(
            &host.url(&format!("/v1/predictions/{id}/share")),
            Some(TOKEN)
        ),
        204
    );
    let (code, gone) = get(&host.url(&format!("/v1/shares/{share_id}")), None);
    assert_eq!(code, 404);
    check_response(&doc, "get", "/v1/shares/{share_id}", 404, &gone);

    // Deleting removes the prediction and its images.
    assert_eq!(
        delete(&host.url(&format!("/v1/predictions/{id}")), Some(TOKEN)),
        204
    );
    assert_eq!(
        get(&host.url(&format!("/v1/predictions/{id}")), Some(TOKEN)).0,
        404
    );
    assert_eq!(get_bytes(url, None).0, 404);
}

/// A label map sent by the client replaces the host's BiSeNet: the browser's map of the same
/// pixels (here native `stage bisenet`'s) gives the same image as the host's own parsing.
#[test]
fn the_clients_label_map_replaces_parsing() {
    let model = consistentid_folder();
    let data = data_dir();
    let face = real_data("images/astronaut.png");
    let labels_file = data.path().join("labels.safetensors");
    let o = run(&[
        "stage",
        "bisenet",
        "--weights",
        model.path().join("face_parsing.pth").to_str().unwrap(),
        "--image",
        face.to_str().unwrap(),
        "--out",
        labels_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&labels_file).unwrap();
    let (labels, shape) = TensorFile::parse("labels", &bytes)
        .unwrap()
        .i64("labels")
        .unwrap();
    assert_eq!(shape, [512, 512]);
    let mut map = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut map, 512, 512);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        let px: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
        w.write_image_data(&px).unwrap();
        w.finish().unwrap();
    }
    use base64::Engine as _;
    let map_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&map)
    );

    let host = Host::start(model.path(), data.path(), &[]);
    let run_with = |parsing: Option<&str>| -> Vec<u8> {
        let mut input = json!({
            "prompt": "a portrait", "face_image": data_uri(&face, "image/png"),
            "id_embedding": id_embedding(), "num_inference_steps": 2, "start_merge_step": 0,
            "width": 32, "height": 48, "seed": 5
        });
        if let Some(p) = parsing {
            input["face_parsing"] = json!(p);
        }
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
        get_bytes(p["output"][0].as_str().unwrap(), None).2
    };
    let own = run_with(None);
    let client = run_with(Some(&map_uri));
    assert_eq!(decode_png(&own), decode_png(&client));
    // A different map changes the regions, hence the image.
    let mut other = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut other, 512, 512);
        enc.set_color(png::ColorType::Grayscale);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&vec![0u8; 512 * 512]).unwrap();
        w.finish().unwrap();
    }
    let other_uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&other)
    );
    assert_ne!(decode_png(&own), decode_png(&run_with(Some(&other_uri))));
}

/// The models the web app runs in the browser come from the model folder, revalidated by ETag;
/// nothing else of the folder is reachable, and a missing BlazeFace is a clear 404.
#[test]
fn the_browsers_analysis_models_are_served_from_the_model_folder() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let url = host.url("/v1/analysis-models/face_parsing.pth");
    let mut resp = agent().get(&url).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    assert_eq!(
        body,
        std::fs::read(model.path().join("face_parsing.pth")).unwrap()
    );
    let again = agent()
        .get(&url)
        .header("If-None-Match", &etag)
        .call()
        .unwrap();
    assert_eq!(again.status().as_u16(), 304, "unchanged: not sent again");

    let (code, problem) = get(&host.url("/v1/analysis-models/blazeface.onnx"), None);
    assert_eq!(code, 404);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("consistentid fetch"),
        "{problem}"
    );
    let dest = model
        .path()
        .join(consistentid_core::face::blazeface::MODEL_FOLDER_PATH);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(
        real_data("blazeface/face_detection_front_128x128_barracuda.onnx"),
        &dest,
    )
    .unwrap();
    let (code, _, bytes) = get_bytes(&host.url("/v1/analysis-models/blazeface.onnx"), None);
    assert_eq!(code, 200);
    assert_eq!(bytes, std::fs::read(&dest).unwrap());
    let back = model
        .path()
        .join(consistentid_core::face::blazeface::BACK_MODEL_FOLDER_PATH);
    std::fs::copy(
        real_data("blazeface/face_detection_back_256x256_barracuda.onnx"),
        &back,
    )
    .unwrap();
    let (code, _, bytes) = get_bytes(&host.url("/v1/analysis-models/blazeface-back.onnx"), None);
    assert_eq!(code, 200);
    assert_eq!(bytes, std::fs::read(&back).unwrap());
    for other in [
        "ConsistentID-v1.bin",
        "..%2FConsistentID-v1.bin",
        "model_index.json",
    ] {
        let (code, _) = get(&host.url(&format!("/v1/analysis-models/{other}")), None);
        assert_eq!(code, 404, "{other}");
    }
}

/// With several faces in the photo, `face_box` picks the one that gives the identity: the host
/// uses the detection in the box, as `generate --face-index` does for that face. A bad
/// box is a field error before any compute.
#[test]
fn a_face_box_picks_one_of_several_faces() {
    let model = consistentid_folder();
    // The replica buffalo_l graphs: SCRFD's random weights find hundreds of "faces".
    for (from, to) in [
        ("onnx/scrfd_tiny_det.onnx", "det_10g.onnx"),
        ("onnx/iresnet_tiny_512.onnx", "w600k_r50.onnx"),
    ] {
        std::fs::copy(fixture(from), model.path().join(to)).unwrap();
    }
    let data = data_dir();
    let face = real_data("images/astronaut.png");
    let host = Host::start(model.path(), data.path(), &[]);
    let predict = |face_box: Option<Value>| -> (u16, Value) {
        let mut input = json!({
            "prompt": "a portrait", "face_image": data_uri(&face, "image/png"),
            "num_inference_steps": 2, "start_merge_step": 1,
            "width": 32, "height": 48, "seed": 3
        });
        if let Some(b) = face_box {
            input["face_box"] = b;
        }
        post_json(
            &host.url("/v1/predictions"),
            Some(TOKEN),
            &json!({ "input": input }),
            &[("Prefer", "wait")],
        )
    };
    let image = |p: &Value| decode_png(&get_bytes(p["output"][0].as_str().unwrap(), None).2);

    let (code, first) = predict(None);
    assert_eq!((code, first["status"].as_str()), (201, Some("succeeded")));
    // "… #1 score 0.xyz box (x1,y1)-(x2,y2); …": the second face in score order.
    let logs = first["logs"].as_str().unwrap();
    let listed = logs.split("#1 score ").nth(1).expect(logs);
    let numbers: Vec<f64> = listed
        .split_once(" box (")
        .unwrap()
        .1
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|t| !t.is_empty() && *t != "-")
        .take(4)
        .map(|t| t.parse().unwrap())
        .collect();
    let (code, second) = predict(Some(json!(numbers)));
    assert_eq!(
        (code, second["status"].as_str()),
        (201, Some("succeeded")),
        "{second}"
    );
    assert!(
        second["logs"].as_str().unwrap().contains(&format!(
            "using the one at ({:.0},{:.0})",
            numbers[0], numbers[1]
        )),
        "{second}"
    );
    assert_ne!(
        image(&first),
        image(&second),
        "another face, another identity"
    );

    let out = data.path().join("cli");
    let o = run(&[
        "generate",
        "--model",
        model.path().to_str().unwrap(),
        "--face",
        face.to_str().unwrap(),
        "--face-index",
        "1",
        "--prompt",
        "a portrait",
        "--steps",
        "2",
        "--merge-step",
        "1",
        "--width",
        "32",
        "--height",
        "48",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cli = std::fs::read(out.join("3-0.png")).unwrap();
    assert_eq!(image(&second), decode_png(&cli));

    for (b, says) in [
        (json!([40, 40, 20, 90]), "x1 < x2"),
        (json!([40, 40, 90]), "face_box"),
        (json!([600, 10, 700, 90]), "outside the 512×512 photo"),
    ] {
        let (code, problem) = predict(Some(b.clone()));
        assert_eq!(code, 422, "{b}: {problem}");
        assert!(problem.to_string().contains(says), "{b}: {problem}");
    }
    let with_embedding = json!({ "input": {
        "prompt": "a portrait", "face_image": data_uri(&face, "image/png"),
        "id_embedding": id_embedding(), "face_box": [1, 2, 30, 40]
    }});
    let (code, problem) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &with_embedding,
        &[],
    );
    assert_eq!(code, 422, "{problem}");
    assert!(
        problem.to_string().contains("with id_embedding"),
        "{problem}"
    );
}
