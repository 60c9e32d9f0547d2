//! Event streams across failures of the hosted demo's processes (`--role api` and `--role
//! worker` on one PostgreSQL database; workers on the test engine): a client whose API process
//! is killed mid-job resumes on another with `Last-Event-ID` and misses nothing stored; an API
//! process stopped with SIGTERM (graceful drain) ends its open streams and exits at once while
//! the job goes on; a stream stays open through a restart of the database and ends with the job.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::host::*;
use common::pgserver::PgServer;
use common::*;
use serde_json::{Value, json};

fn job() -> Value {
    json!({ "input": {
        "prompt": "x", "face_image": data_uri(&real_data("images/astronaut.png"), "image/png"),
        "id_embedding": vec![0.0; 512], "num_inference_steps": 2, "start_merge_step": 0,
        "width": 32, "height": 32, "seed": 11
    }})
}

fn create(api: &Host) -> String {
    let (code, p) = post_json(&api.url("/v1/predictions"), Some(TOKEN), &job(), &[]);
    assert_eq!(code, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

fn ids(events: &[Sse]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

/// A worker on the test engine, running `script`.
fn worker(
    model: &std::path::Path,
    data: &std::path::Path,
    db: &str,
    extra: &[&str],
    script: &str,
) -> Host {
    Host::start_with(
        model,
        data,
        Some(db),
        &[&["--role", "worker", "--heartbeat", "400ms"][..], extra].concat(),
        &[("CONSISTENTID_TEST_ENGINE", script)],
    )
}

/// Two API processes and a worker on a fresh database (and the folders they use), with one
/// job created through the first API process.
struct Demo {
    apis: [Host; 2],
    database: String,
    job: String,
    _worker: Host,
    _folders: [tempfile::TempDir; 2],
}

/// `None` where the tests have no PostgreSQL (CI always has).
fn demo(script: &str) -> Option<Demo> {
    let database = fresh_database()?;
    let (model, data) = (consistentid_folder(), data_dir());
    let (m, d) = (model.path(), data.path());
    let apis = [0, 1].map(|_| Host::start_on(m, d, Some(&database), &["--role", "api"]));
    let worker = worker(m, d, &database, &[], script);
    let job = create(&apis[0]);
    Some(Demo {
        apis,
        database,
        job,
        _worker: worker,
        _folders: [model, data],
    })
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_stream_resumes_on_another_api_process_after_a_kill() {
    let Some(demo) = demo("steps:60,step_ms:50") else {
        return;
    };
    // The rest of `demo` (the worker, the folders) lives to the test's end.
    let [first_api, second_api] = demo.apis;
    let (database, id) = (&demo.database, &demo.job);
    let path = format!("/v1/predictions/{id}/events");
    // A few events from the first process (progress among them), then it dies.
    let before = read_events(&first_api.url(&path), None, 8);
    assert!(before.iter().any(|e| e.event == "progress"), "{before:?}");
    first_api.kill9();
    let last = before.last().unwrap().id.clone().unwrap();
    let after = read_events(&second_api.url(&path), Some(&last), 10_000);
    let seen: Vec<u64> = ids(&before).into_iter().chain(ids(&after)).collect();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let end = after.last().unwrap();
    assert_eq!(end.event, "completed", "{after:?}");
    assert_eq!(end.data["status"], "succeeded");
    // Nothing stored was missed (progress is live only; everything else is stored).
    let stored: BTreeSet<u64> = sql(
        database,
        &format!(
            "SELECT string_agg(seq::text, ',') FROM prediction_events WHERE prediction = '{id}'"
        ),
    )
    .split(',')
    .map(|n| n.parse().unwrap())
    .collect();
    let seen: BTreeSet<u64> = seen.into_iter().collect();
    assert!(stored.is_subset(&seen), "{stored:?} {seen:?}");
    assert!(after.iter().any(|e| e.event == "output"), "{after:?}");
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_stream_stays_open_through_a_database_restart() {
    // Only where the tests have PostgreSQL (CI always does).
    if fresh_database().is_none() {
        return;
    }
    let server = PgServer::start();
    let (model, data) = (consistentid_folder(), data_dir());
    let (model, data) = (model.path(), data.path());
    // A lease longer than the outage: the job stays with its worker.
    let lease = ["--lease", "20s"];
    let api = Host::start_on(
        model,
        data,
        Some(&server.url),
        &[&["--role", "api"][..], &lease].concat(),
    );
    let _worker = worker(model, data, &server.url, &lease, "steps:60,step_ms:50");
    api.wait_health("ready");
    let id = create(&api);
    let url = api.url(&format!("/v1/predictions/{id}/events"));
    let reader = std::thread::spawn(move || read_events(&url, None, 10_000));
    wait_status(&api, &id, &["processing"]);
    std::thread::sleep(Duration::from_millis(500));
    server.down();
    std::thread::sleep(Duration::from_secs(1));
    server.up();
    let events = reader.join().unwrap();
    let seen = ids(&events);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let end = events.last().unwrap();
    assert_eq!(end.event, "completed", "{events:?}");
    assert_eq!(end.data["status"], "succeeded", "{}", end.data);
    assert!(events.iter().any(|e| e.event == "output"), "{events:?}");
    assert_eq!(
        sql(
            &server.url,
            &format!("SELECT attempts FROM predictions WHERE id = '{id}'")
        ),
        "1"
    );
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn an_api_process_stopped_with_sigterm_ends_its_streams_and_the_job_goes_on() {
    // 100 steps of 50 ms: the job outlasts the drain by seconds.
    let Some(demo) = demo("steps:100,step_ms:50") else {
        return;
    };
    // The rest of `demo` (the worker, the folders) lives to the test's end.
    let [first_api, second_api] = demo.apis;
    let id = &demo.job;
    let url = first_api.url(&format!("/v1/predictions/{id}/events"));
    let reader = std::thread::spawn(move || read_events(&url, None, 10_000));
    wait_status(&first_api, id, &["processing"]);
    std::thread::sleep(Duration::from_millis(300));
    let signaled = std::time::Instant::now();
    let status = first_api.terminate();
    let drained = signaled.elapsed();
    assert!(status.success(), "{status:?}");
    // The open stream ended with the process, not with the job.
    let before = reader.join().unwrap();
    assert!(before.iter().all(|e| e.event != "completed"), "{before:?}");
    assert!(drained < Duration::from_secs(3), "{drained:?}");
    assert_eq!(status_of(&second_api, id), "processing");
    // The client resumes on the other process and misses nothing.
    let last = before.last().unwrap().id.clone().unwrap();
    let after = read_events(
        &second_api.url(&format!("/v1/predictions/{id}/events")),
        Some(&last),
        10_000,
    );
    let seen: Vec<u64> = ids(&before).into_iter().chain(ids(&after)).collect();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    let end = after.last().unwrap();
    assert_eq!(end.event, "completed", "{after:?}");
    assert_eq!(end.data["status"], "succeeded", "{}", end.data);
}

fn status_of(api: &Host, id: &str) -> String {
    status(api, id)["status"].as_str().unwrap().to_string()
}
