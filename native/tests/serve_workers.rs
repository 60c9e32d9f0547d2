//! The hosted demo's shape: `serve --role api` processes and `serve --role worker` processes
//! on one PostgreSQL database, as real processes on loopback. Workers run a test engine
//! (`--features test-engine`: the same events, no models) so that a thousand jobs drain in
//! seconds: three workers run each exactly once, one of them killed with `kill -9` mid-drain
//! and started again; a worker stopped with SIGTERM hands its job back at once; a worker frozen
//! past its lease (SIGSTOP) changes nothing when it wakes. And the operators' side: roles
//! without a database refuse to start, `consistentid migrate`, the workers in `/v1/health`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::*;
use common::*;
use serde_json::{Value, json};

/// A small face as a data URI (the test engine does not look at it; the API decodes it).
fn small_face() -> String {
    use base64::Engine as _;
    let mut png = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png, 64, 64);
        enc.set_color(png::ColorType::Rgb);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&[128u8; 64 * 64 * 3]).unwrap();
    }
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn job(face: &str, seed: u64) -> Value {
    json!({ "input": {
        "prompt": "x", "face_image": face, "id_embedding": vec![0.0; 512],
        "num_inference_steps": 2, "start_merge_step": 0, "width": 32, "height": 32,
        "seed": seed
    }})
}

fn create(api: &Host, body: &Value) -> String {
    let (code, p) = post_json(&api.url("/v1/predictions"), Some(TOKEN), body, &[]);
    assert_eq!(code, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

fn count(database: &str, query: &str) -> u64 {
    sql(database, query).parse().unwrap()
}

/// Waits until `query` (a count) reaches `want` (bounded), naming what the hosts logged.
fn wait_count(database: &str, query: &str, want: u64, hosts: &[&Host]) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let n = count(database, query);
        if n >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: {n} of {want}; logs: {:?}",
            hosts.iter().map(|h| h.log()).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh database, the tiny model folder and a data folder (`None`: no database here).
struct Setup {
    database: String,
    model: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Setup {
    fn new() -> Option<Self> {
        Some(Self {
            database: fresh_database()?,
            model: consistentid_folder(),
            data: data_dir(),
        })
    }

    /// An API process on this database.
    fn api(&self, extra: &[&str]) -> Host {
        let (database, model, data) = self.parts();
        Host::start_on(
            model,
            data,
            Some(database),
            &[&["--role", "api"][..], extra].concat(),
        )
    }

    /// (database URL, model folder, data folder).
    fn parts(&self) -> (&str, &Path, &Path) {
        (&self.database, self.model.path(), self.data.path())
    }
}

/// The test engine at `script`, with a short heartbeat.
fn worker(model: &Path, data: &Path, database: &str, script: &str, extra: &[&str]) -> Host {
    let mut args = vec!["--role", "worker", "--heartbeat", "400ms"];
    args.extend_from_slice(extra);
    Host::start_with(
        model,
        data,
        Some(database),
        &args,
        &[("CONSISTENTID_TEST_ENGINE", script)],
    )
}

use std::path::Path;

#[test]
fn roles_need_a_database_and_migrate_brings_one_up_to_date() {
    let model = consistentid_folder();
    let data = data_dir();
    for role in ["api", "worker"] {
        let out = Command::new(env!("CARGO_BIN_EXE_consistentid"))
            .args(["serve", "--role", role, "--port", "0", "--model"])
            .arg(model.path())
            .arg("--data")
            .arg(data.path())
            .env_remove("CONSISTENTID_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("--role {role} shares its queue"))
                && stderr.contains("--database-url"),
            "{stderr}"
        );
    }
    let Some(database) = fresh_database() else {
        return;
    };
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_consistentid"))
            .args(["migrate", "--database-url", &database])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout.contains("is up to date: 2 migration(s), the last 2 (scale out)"),
            "{stdout}"
        );
    }
    assert_eq!(
        sql(
            &database,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations"
        ),
        "1,2"
    );
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn three_workers_drain_a_thousand_jobs_once_each_through_a_kill() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let (database, model, data) = setup.parts();
    let api = setup.api(&[
        "--queue-size",
        "1000",
        "--owner-queue",
        "1000",
        "--rate-limit",
        "0",
    ]);
    let health = get(&api.url("/v1/health"), None).1;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains("no worker"),
        "{health}"
    );

    // A thousand jobs queued before any worker runs, from four clients at once.
    let face = small_face();
    std::thread::scope(|s| {
        for client in 0..4u64 {
            let (api, face) = (&api, &face);
            s.spawn(move || {
                for k in 0..250 {
                    create(api, &job(face, client * 1000 + k));
                }
            });
        }
    });
    assert_eq!(
        count(
            database,
            "SELECT count(*) FROM predictions WHERE status = 'starting'"
        ),
        1000
    );

    let script = "steps:2,step_ms:2";
    let mut workers: Vec<Host> = (0..3)
        .map(|_| worker(model, data, database, script, &[]))
        .collect();
    api.wait_health("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let health = get(&api.url("/v1/health"), None).1;
        if health["detail"] == "3 of 3 worker(s) ready" {
            break health;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let listed = health["workers"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{health}");
    assert!(
        listed
            .iter()
            .all(|w| w["device"] == "test-engine" && w["last_seen_seconds"].as_f64() < Some(2.0)),
        "{health}"
    );

    let (_, _, metrics) = get_bytes(&api.url("/metrics"), None);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("consistentid_workers{device=\"test-engine\",ready=\"true\"} 3"),
        "{metrics}"
    );

    // One worker killed mid-drain and started again: its job runs again, once.
    let done = "SELECT count(*) FROM predictions WHERE status = 'succeeded'";
    wait_count(database, done, 300, &workers.iter().collect::<Vec<_>>());
    workers.remove(0).kill9();
    workers.push(worker(model, data, database, script, &[]));
    wait_count(database, done, 1000, &workers.iter().collect::<Vec<_>>());
    // A kill between a job's end and its `completed` leaves the announcement to a reaper.
    wait_count(
        database,
        "SELECT count(DISTINCT prediction) FROM prediction_events WHERE kind = 'completed'",
        1000,
        &[&api],
    );

    let q = |query: &str| sql(database, query);
    assert_eq!(q("SELECT count(*) FROM predictions"), "1000");
    assert_eq!(
        q("SELECT count(*) FROM predictions WHERE status <> 'succeeded'"),
        "0"
    );
    // A run is lost only when the kill hit a running job: at most one job ran twice.
    let again = count(
        database,
        "SELECT count(*) FROM predictions WHERE attempts <> 1",
    );
    assert!(again <= 1, "{again} jobs ran more than once");
    // Every job: one `completed` event, as many `processing` as it had runs, one image. (A
    // kill between a claim and its `processing` event loses that run's announcement: at most
    // the job that ran again lacks one.)
    assert_eq!(
        q(
            "SELECT count(*) FROM (SELECT prediction FROM prediction_events WHERE kind = 'completed' \
           GROUP BY prediction HAVING count(*) = 1) c"
        ),
        "1000"
    );
    let runs = "(SELECT count(*) FROM prediction_events e WHERE e.prediction = p.id \
        AND e.kind = 'status' AND e.data LIKE '%\"processing\"%')";
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM predictions p WHERE {runs} NOT IN (attempts, attempts - 1) \
             OR ({runs} <> attempts AND attempts = 1)"
        )),
        "0"
    );
    assert_eq!(
        q("SELECT count(*) FROM predictions WHERE jsonb_array_length(outputs) <> 1"),
        "0"
    );
    assert_eq!(
        q("SELECT count(*) FROM files WHERE kind = 'output'"),
        "1000"
    );
    // All four worker processes ran jobs; none was left with a lease.
    let ran: Vec<String> =
        q("SELECT worker_id || ' ' || count(*) FROM predictions GROUP BY worker_id")
            .lines()
            .map(str::to_string)
            .collect();
    assert!(ran.len() >= 3, "{ran:?}");
    assert_eq!(
        q("SELECT count(*) FROM predictions WHERE lease_until IS NOT NULL"),
        "0"
    );

    // A worker stopped with SIGTERM leaves the list of workers at once.
    let stopping = workers.pop().unwrap();
    assert!(stopping.terminate().success());
    let health = get(&api.url("/v1/health"), None).1;
    assert_eq!(health["workers"].as_array().unwrap().len(), 2, "{health}");
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_worker_stopped_with_sigterm_hands_its_job_back_at_once() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let (database, model, data) = setup.parts();
    // A long lease: the job must not wait for it to run out.
    let api = setup.api(&["--lease", "60s"]);
    let first = worker(
        model,
        data,
        database,
        "steps:400,step_ms:25",
        &["--lease", "60s"],
    );
    api.wait_health("ready");
    let id = create(&api, &job(&small_face(), 7));
    wait_status(&api, &id, &["processing"]);
    wait_steps(&api, &id);
    let stopped_at = Instant::now();
    assert!(first.terminate().success());
    let row = sql(
        database,
        &format!("SELECT status || ' ' || attempts FROM predictions WHERE id = '{id}'"),
    );
    assert_eq!(row, "starting 0", "handed back, its run not counted");
    let second = worker(
        model,
        data,
        database,
        "steps:4,step_ms:5",
        &["--lease", "60s"],
    );
    let done = wait_status(&api, &id, &["succeeded", "failed", "canceled"]);
    assert_eq!(done["status"], "succeeded", "{done}; {}", second.log());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(30),
        "the job waited for the lease"
    );
    assert_eq!(
        sql(
            database,
            &format!("SELECT attempts FROM predictions WHERE id = '{id}'")
        ),
        "1"
    );
    assert_eq!(done["output"].as_array().unwrap().len(), 1, "{done}");
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_frozen_worker_that_wakes_after_its_lease_changes_nothing() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let (database, model, data) = setup.parts();
    let api = setup.api(&[]);
    let zombie = worker(model, data, database, "steps:60,step_ms:50", &[]);
    api.wait_health("ready");
    let id = create(
        &api,
        &json!({ "input": {
            "prompt": "x", "face_image": small_face(), "id_embedding": vec![0.0; 512],
            "num_inference_steps": 2, "start_merge_step": 0, "width": 32, "height": 32,
            "seed": 3, "num_outputs": 2
        }}),
    );
    wait_status(&api, &id, &["processing"]);
    wait_steps(&api, &id);
    zombie.signal("STOP");
    // Another worker takes the job once the lease (2 s) runs out, and finishes it.
    let rescuer = worker(model, data, database, "steps:3,step_ms:5", &[]);
    let done = wait_status(&api, &id, &["succeeded", "failed", "canceled"]);
    assert_eq!(done["status"], "succeeded", "{done}; {}", rescuer.log());
    zombie.signal("CONT");
    // The woken worker finds its attempt over at its next beat or write, and stops.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !zombie.log().contains("the lease ran out") {
        assert!(Instant::now() < deadline, "{}", zombie.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = status(&api, &id);
    assert_eq!(after["status"], "succeeded", "{after}");
    assert_eq!(
        after["output"], done["output"],
        "the outputs did not change"
    );
    assert_eq!(after["output"].as_array().unwrap().len(), 2, "{after}");
    let q = |query: &str| sql(database, query);
    assert_eq!(
        q(&format!(
            "SELECT attempts FROM predictions WHERE id = '{id}'"
        )),
        "2"
    );
    assert_eq!(
        q(&format!(
            "SELECT count(*) FROM files WHERE prediction = '{id}' AND kind = 'output'"
        )),
        "2"
    );
    let rescuer_id = q(&format!(
        "SELECT worker_id FROM predictions WHERE id = '{id}'"
    ));
    assert!(rescuer.log().contains(&rescuer_id) || !zombie.log().contains(&rescuer_id));
}

#[test]
fn the_rate_limit_holds_across_api_processes() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let (database, model, data) = setup.parts();
    let start = || {
        Host::start_on(
            model,
            data,
            Some(database),
            &["--role", "api", "--rate-limit", "3"],
        )
    };
    let (a, b) = (start(), start());
    // Any POST counts (here a cancel of no prediction: 404): three a minute in all.
    let cancel = |h: &Host| {
        post_json(
            &h.url("/v1/predictions/aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel"),
            Some(TOKEN),
            &json!({}),
            &[],
        )
    };
    let answers: Vec<(u16, Value)> = [&a, &b, &a, &b, &a].iter().map(|h| cancel(h)).collect();
    let codes: Vec<u16> = answers.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes, [404, 404, 404, 429, 429], "{answers:?}");
    assert!(
        answers[3].1["detail"]
            .as_str()
            .unwrap()
            .contains("too many"),
        "{answers:?}"
    );
    // Workers by device in an API process's /metrics: none here.
    let (code, _, metrics) = get_bytes(&a.url("/metrics"), None);
    assert_eq!(code, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(!metrics.contains("consistentid_workers{"), "{metrics}");
}
