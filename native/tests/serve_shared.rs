//! Several hosts on one PostgreSQL database (`serve --database-url`), as real processes on
//! loopback: a host that only takes jobs (`--paused`) and hosts that run them. A job posted to
//! the first runs on a worker and the first's event stream follows it to the end; a cancel
//! through the first stops the job on the worker; a worker killed with `kill -9` mid-job loses
//! it to another once its lease runs out, and the job ends with one set of outputs. And a
//! database that goes away: requests get 503 with `Retry-After`, health says why, and the host
//! works again when the database is back.

mod common;

use common::host::*;
use common::hostile::*;
use common::pgserver::PgServer;
use common::*;
use serde_json::json;

#[test]
fn hosts_on_one_database_share_the_queue_the_streams_and_cancels() {
    let Some(database) = fresh_database() else {
        return;
    };
    let model = consistentid_folder();
    let data = data_dir();
    let start = |extra: &[&str]| Host::start_on(model.path(), data.path(), Some(&database), extra);
    let api = start(&["--paused"]);
    let worker = start(&[]);
    api.wait_health("ready");
    worker.wait_health("ready");
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");

    // Posted to the host that runs nothing: the worker runs it, and the stream opened on the
    // first host sees it through to `completed`, ids strictly increasing.
    let id = create(&api, &body(&face, 4, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = read_events(
        &api.url(&format!("/v1/predictions/{id}/events")),
        None,
        1000,
    );
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{names:?}");
    assert_eq!(names.last(), Some(&"completed"), "{names:?}");
    assert!(names.contains(&"output"), "{names:?}");
    let processing = events
        .iter()
        .any(|e| e.event == "status" && e.data["status"] == "processing");
    assert!(processing, "{names:?}");
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?} {names:?}");
    assert_eq!(events.last().unwrap().data["status"], "succeeded");
    let done = status(&api, &id);
    let output = done["output"][0].as_str().unwrap();
    let (code, content_type, png) = get_bytes(output, Some(TOKEN));
    assert_eq!((code, content_type.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));

    // A cancel through the first host stops the job running on the worker.
    let long = create(&api, &body(&face, 1000, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&api, &long, &["processing"]);
    wait_steps(&worker, &long);
    let (code, _) = post_json(
        &api.url(&format!("/v1/predictions/{long}/cancel")),
        Some(TOKEN),
        &json!({}),
        &[],
    );
    assert_eq!(code, 200);
    let canceled = wait_status(&api, &long, &["canceled", "succeeded", "failed"]);
    assert_eq!(canceled["status"], "canceled", "{canceled}");

    // A worker killed mid-job: another takes the job once the lease runs out.
    let lost = create(&api, &body(&face, 200, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&api, &lost, &["processing"]);
    wait_steps(&worker, &lost);
    worker.kill9();
    let second = start(&[]);
    let finished = wait_status(&api, &lost, &["succeeded", "failed", "canceled"]);
    assert_eq!(
        finished["status"],
        "succeeded",
        "{finished}; {}",
        second.log()
    );
    assert_eq!(
        finished["output"].as_array().unwrap().len(),
        1,
        "{finished}"
    );
}

#[test]
fn a_database_outage_is_503_and_the_host_recovers() {
    // Only where the tests have PostgreSQL (CI always does).
    if fresh_database().is_none() {
        return;
    }
    let server = PgServer::start();
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start_on(model.path(), data.path(), Some(&server.url), &[]);
    host.wait_health("ready");
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let id = create(&host, &body(&face, 2, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&host, &id, &["succeeded"]);

    server.down();
    let (code, problem) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &body(&face, 2, false),
        &[],
    );
    assert_eq!(code, 503, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("database"),
        "{problem}"
    );
    let (code, _) = get(&host.url(&format!("/v1/predictions/{id}")), Some(TOKEN));
    assert_eq!(code, 503);
    let health = host.wait_health("degraded");
    assert!(
        !health["detail"].as_str().unwrap().contains("password"),
        "{health}"
    );

    server.up();
    host.wait_health("ready");
    let again = create(&host, &body(&face, 2, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        wait_status(&host, &again, &["succeeded", "failed"])["status"],
        "succeeded"
    );
    assert_eq!(status(&host, &id)["status"], "succeeded");
}
