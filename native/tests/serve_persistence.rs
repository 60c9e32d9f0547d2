//! Nothing accepted is lost: a queued job survives a restart and runs; a job running during
//! `kill -9` runs again once, then fails with a reason; SIGTERM re-queues the running job;
//! cancel stops a job at its next step.

mod common;

use std::time::Duration;

use common::host::*;
use common::*;
use serde_json::{Value, json};

fn body(steps: u32) -> Value {
    json!({ "input": {
        "prompt": "x", "face_image": data_uri(&real_data("images/astronaut.png"), "image/png"),
        "id_embedding": vec![0.0; 512], "num_inference_steps": steps, "start_merge_step": 0,
        "width": 32, "height": 32
    }})
}

fn create(host: &Host, steps: u32) -> String {
    let (code, p) = post_json(&host.url("/v1/predictions"), Some(TOKEN), &body(steps), &[]);
    assert_eq!(code, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

#[test]
fn a_queued_job_survives_a_restart() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &["--paused"]);
    let id = create(&host, 2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status(&host, &id)["status"], "starting");
    assert!(host.terminate().success());
    let host = Host::start(model.path(), data.path(), &[]);
    let done = wait_status(&host, &id, &["succeeded", "failed"]);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"].as_array().unwrap().len(), 1);
}

#[test]
fn kill_9_runs_the_job_again_once_then_fails_it() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let id = create(&host, 1000);
    wait_steps(&host, &id);
    host.kill9();

    let host = Host::start(model.path(), data.path(), &[]);
    wait_status(&host, &id, &["processing"]);
    wait_steps(&host, &id);
    host.kill9();

    let host = Host::start(model.path(), data.path(), &[]);
    let failed = wait_status(&host, &id, &["failed", "succeeded"]);
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("stopped twice"),
        "{failed}"
    );
    // The host is fine afterwards.
    let id2 = create(&host, 2);
    assert_eq!(
        wait_status(&host, &id2, &["succeeded", "failed"])["status"],
        "succeeded"
    );
}

#[test]
fn cancel_stops_a_running_job_and_sigterm_requeues_one() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let id = create(&host, 1000);
    wait_steps(&host, &id);
    // Only the owner can cancel.
    let (code, _) = post_json(
        &host.url(&format!("/v1/predictions/{id}/cancel")),
        Some("not-the-owner"),
        &json!({}),
        &[],
    );
    assert_eq!(code, 404);
    let (code, _) = post_json(
        &host.url(&format!("/v1/predictions/{id}/cancel")),
        Some(TOKEN),
        &json!({}),
        &[],
    );
    assert_eq!(code, 200);
    let canceled = wait_status(&host, &id, &["canceled", "succeeded", "failed"]);
    assert_eq!(canceled["status"], "canceled");
    let events = read_events(
        &host.url(&format!("/v1/predictions/{id}/events")),
        None,
        5000,
    );
    assert_eq!(events.last().unwrap().data["status"], "canceled");

    // SIGTERM while a job runs: the host exits and the job waits for the next start.
    let id = create(&host, 1000);
    wait_steps(&host, &id);
    assert!(host.terminate().success());
    let host = Host::start(model.path(), data.path(), &[]);
    let again = wait_status(&host, &id, &["processing", "starting"]);
    assert!(again["error"].is_null(), "{again}");
    let (code, _) = post_json(
        &host.url(&format!("/v1/predictions/{id}/cancel")),
        Some(TOKEN),
        &json!({}),
        &[],
    );
    assert_eq!(code, 200);
    assert_eq!(
        wait_status(&host, &id, &["canceled", "succeeded", "failed"])["status"],
        "canceled"
    );
}
