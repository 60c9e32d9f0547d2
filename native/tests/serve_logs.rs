//! The host's structured log (`serve --log-format json`) over a real prediction: every line is
//! a JSON object; a request's lines carry its id (the client's `X-Request-Id`, echoed back; a
//! fresh one for an unusable id) and the prediction's; a job's lines its prediction id,
//! attempt and worker id; no line holds the face, the token or the prompt.

mod common;

use std::time::{Duration, Instant};

use common::host::*;
use common::*;
use serde_json::{Value, json};

/// The span called `name` in a JSON log line's span list.
fn span<'a>(line: &'a Value, name: &str) -> &'a Value {
    line["spans"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or(&Value::Null)
}

#[test]
fn the_json_log_names_requests_jobs_and_workers_and_never_faces_tokens_or_prompts() {
    let (model, data) = (consistentid_folder(), data_dir());
    let host = Host::start(
        model.path(),
        data.path(),
        &["--log-format", "json", "--worker-id", "worker-of-logs"],
    );
    host.wait_health("ready");
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let body = json!({ "input": {
        "prompt": "a portrait by a quokka-zanzibar painter", "face_image": face,
        "id_embedding": vec![0.0; 512], "num_inference_steps": 2, "start_merge_step": 0,
        "width": 32, "height": 32, "seed": 5
    }});
    let (code, p) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &body,
        &[("X-Request-Id", "req-of-logs.1")],
    );
    assert_eq!(code, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let done = wait_status(&host, &id, &["succeeded", "failed", "canceled"]);
    assert_eq!(done["status"], "succeeded", "{done}; {}", host.log());

    // An id the host cannot use is replaced, and the new one is sent back.
    let answer = agent()
        .get(&host.url("/v1/health"))
        .header("X-Request-Id", "no spaces allowed")
        .call()
        .unwrap();
    let echoed = answer.headers()["x-request-id"].to_str().unwrap();
    assert!(echoed.len() == 26 && echoed.bytes().all(|b| b.is_ascii_alphanumeric()));

    let deadline = Instant::now() + Duration::from_secs(30);
    while !host.log().contains("job ended") {
        assert!(Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = host.log();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let any = |what: &str, test: &dyn Fn(&Value) -> bool| {
        assert!(lines.iter().any(test), "no line {what} in\n{text}");
    };
    let request = |l: &Value| span(l, "request").clone();
    any("for the creation", &|l| {
        l["message"] == "prediction created"
            && request(l)["request_id"] == "req-of-logs.1"
            && request(l)["prediction_id"] == id.as_str()
    });
    any("for its answer", &|l| {
        l["message"] == "answered"
            && l["status"] == 201
            && request(l)["request_id"] == "req-of-logs.1"
            && request(l)["route"] == "/v1/predictions"
    });
    any("for a read of it", &|l| {
        request(l)["route"] == "/v1/predictions/{id}" && request(l)["prediction_id"] == id.as_str()
    });
    for message in ["job started", "job ended"] {
        any(message, &|l| {
            l["message"] == message
                && span(l, "job")["prediction_id"] == id.as_str()
                && span(l, "job")["attempt"] == 1
                && span(l, "worker")["worker_id"] == "worker-of-logs"
        });
    }
    any("with the job's end", &|l| {
        l["message"] == "job ended" && l["status"] == "succeeded"
    });
    // Nothing personal: the token, the face (any stretch of its base64), the prompt.
    assert!(!text.contains(TOKEN));
    let encoded = face.split_once(',').unwrap().1;
    for at in [0, encoded.len() / 2, encoded.len() - 40] {
        assert!(!text.contains(&encoded[at..at + 40]));
    }
    assert!(!text.contains("quokka"));
}
