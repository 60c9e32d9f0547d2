//! The host under careless use and faults, one test per defect found by trying to break it:
//! one upload used by several predictions, recovery and a full disk leaving faces behind, two
//! hosts on one data folder, and resuming an event stream. All over real HTTP on loopback,
//! bounded in count and time.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::bucket::*;
use common::host::*;
use common::hostile::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn one_upload_serves_several_predictions_and_a_kept_face_survives() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    let (code, file) = upload(&host.base, Some(TOKEN), "me.png", &astronaut());
    assert_eq!(code, 201, "{file}");
    let face = file["urls"]["get"].as_str().unwrap().to_string();
    // Upload once, run several prompts: the first keeps its face, the second does not. Both
    // are queued before either ends.
    let kept = create(&host, &body(&face, 40, true));
    let other = create(&host, &body(&face, 2, false));
    for p in [&kept, &other] {
        let done = wait_status(&host, p["id"].as_str().unwrap(), &["succeeded", "failed"]);
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let face_of = |p: &Value| -> String {
        status(&host, p["id"].as_str().unwrap())["input"]["face_image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (code, _, bytes) = get_bytes(&face_of(&kept), Some(TOKEN));
    assert_eq!((code, bytes == astronaut()), (200, true), "the kept face");
    let (code, _, _) = get_bytes(&face_of(&other), Some(TOKEN));
    assert_eq!(code, 404, "the face not kept is gone");
    // With no prediction left waiting for it, the upload itself is gone too.
    assert_eq!(get_bytes(&face, Some(TOKEN)).0, 404);
    // The owner deletes an unused upload and the kept face at once; strangers cannot.
    let (code, file) = upload(&host.base, Some(TOKEN), "me.png", &astronaut());
    assert_eq!(code, 201, "{file}");
    let unused = file["urls"]["get"].as_str().unwrap().to_string();
    assert_eq!(delete(&unused, Some("someone-else")), 404);
    assert_eq!(delete(&unused, Some(TOKEN)), 204);
    assert_eq!(get_bytes(&unused, Some(TOKEN)).0, 404);
    assert_eq!(delete(&face_of(&kept), Some(TOKEN)), 204);
    assert_eq!(get_bytes(&face_of(&kept), Some(TOKEN)).0, 404);
    // Outputs go with their prediction, not one by one.
    let done = status(&host, other["id"].as_str().unwrap());
    let output = done["output"][0].as_str().unwrap();
    assert_eq!(delete(output, Some(TOKEN)), 409);
    // No blob of the face is left on disk.
    assert!(!blob_exists(data.path(), &astronaut()));
}

/// Whether any stored file of the host on `data` holds `bytes` (content-addressed under
/// `files/` in the embedded store, one object per file under `objects/` with PostgreSQL, or
/// in its bucket with an object store).
fn blob_exists(data: &std::path::Path, bytes: &[u8]) -> bool {
    fn walk(dir: &std::path::Path, bytes: &[u8]) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path, bytes)
            } else {
                e.metadata().is_ok_and(|m| m.len() == bytes.len() as u64)
                    && std::fs::read(&path).is_ok_and(|b| b == bytes)
            }
        })
    }
    walk(&data.join("files"), bytes)
        || walk(&data.join("objects"), bytes)
        || bucket_holds(data, bytes)
}

/// A host with a 1000-step job of the astronaut's face that has done a few steps.
fn long_job(model: &std::path::Path, data: &std::path::Path) -> (Host, String) {
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let host = Host::start(model, data, &[]);
    let id = create(&host, &body(&face, 1000, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_steps(&host, &id);
    (host, id)
}

#[test]
fn a_job_that_recovery_fails_loses_its_face() {
    let model = consistentid_folder();
    let data = data_dir();
    let (host, id) = long_job(model.path(), data.path());
    host.kill9();
    let host = Host::start(model.path(), data.path(), &[]);
    wait_status(&host, &id, &["processing"]);
    wait_steps(&host, &id);
    let face_url = status(&host, &id)["input"]["face_image"]
        .as_str()
        .unwrap()
        .to_string();
    host.kill9();
    assert!(blob_exists(data.path(), &astronaut()));

    let host = Host::start(model.path(), data.path(), &[]);
    let failed = wait_status(&host, &id, &["failed", "succeeded"]);
    assert_eq!(failed["status"], "failed", "{failed}");
    let face_url = face_url.replace(face_url.split("/v1/").next().unwrap(), host.base.as_str());
    assert_eq!(get_bytes(&face_url, Some(TOKEN)).0, 404);
    assert!(!blob_exists(data.path(), &astronaut()));
}

#[test]
fn a_second_host_on_the_same_data_refuses_to_start_and_touches_nothing() {
    // With PostgreSQL several hosts share the store on purpose.
    if common::host::on_postgres("the data folder's lock") {
        return;
    }
    let model = consistentid_folder();
    let data = data_dir();
    let (first, id) = long_job(model.path(), data.path());
    // The same port too: the lock is taken before anything else.
    let port = first.base.rsplit(':').next().unwrap().to_string();
    for port in ["0", port.as_str()] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_consistentid"))
            .args(["serve", "--port", port, "--model"])
            .arg(model.path())
            .arg("--data")
            .arg(data.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("in use by another")
                && stderr.contains(&format!("process {}", first.pid())),
            "{stderr}"
        );
        assert!(!stderr.contains("recovered"), "{stderr}");
    }
    // The first host's job still runs, once.
    let p = status(&first, &id);
    assert_eq!(p["status"], "processing", "{p}");
    wait_steps(&first, &id);
    assert!(!first.log().contains("queued again"), "{}", first.log());
    let (code, _) = post_json(
        &first.url(&format!("/v1/predictions/{id}/cancel")),
        Some(TOKEN),
        &json!({}),
        &[],
    );
    assert_eq!(code, 200);
    assert_eq!(
        wait_status(&first, &id, &["canceled", "failed", "succeeded"])["status"],
        "canceled"
    );
}

/// Resumes a stream after `last`; its events, checking that the host ends the stream (no
/// keep-alives forever).
fn resume(url: &str, last: &str) -> Vec<Sse> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let t = Instant::now();
    let resp = agent
        .get(url)
        .header("Last-Event-ID", last)
        .call()
        .expect("an answer");
    let mut text = String::new();
    let _ = resp.into_body().into_reader().read_to_string(&mut text);
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "the stream after {last} did not end: {text}"
    );
    parse_events(text.as_bytes(), 1000)
}

#[test]
fn an_event_stream_resumes_with_stable_ids_after_the_buffer_and_past_the_end() {
    let model = consistentid_folder();
    let data = data_dir();
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let host = Host::start(model.path(), data.path(), &[]);
    let id = create(&host, &body(&face, 3, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events_url = |h: &Host| h.url(&format!("/v1/predictions/{id}/events"));
    let live = read_events(&events_url(&host), None, 1000);
    let end = live.last().unwrap();
    assert_eq!(end.event, "completed");
    let end_id = end.id.clone().unwrap();
    let before_end = live[live.len() - 2].id.clone().unwrap();
    let durable: Vec<(String, String)> = live
        .iter()
        .filter(|e| e.event != "progress" && e.event != "preview")
        .map(|e| (e.id.clone().unwrap(), e.event.clone()))
        .collect();
    assert!(durable.iter().any(|(_, e)| e == "output"), "{durable:?}");

    // The live buffer, then (after a restart) the database: the same ids.
    let mut host = host;
    for round in 0..2 {
        let again = resume(&events_url(&host), &before_end);
        assert_eq!(again.len(), 1, "round {round}: {again:?}");
        assert_eq!(
            (again[0].id.as_deref(), again[0].event.as_str()),
            (Some(end_id.as_str()), "completed")
        );
        assert_eq!(again[0].data["status"], "succeeded");
        // At or past the end: the terminal event, then the end of the stream.
        for last in [end_id.as_str(), "999999"] {
            let tail = resume(&events_url(&host), last);
            assert_eq!(tail.len(), 1, "round {round}, {last}: {tail:?}");
            assert_eq!(tail[0].event, "completed");
            assert_eq!(tail[0].id.as_deref(), Some(end_id.as_str()));
        }
        if round == 0 {
            assert!(host.terminate().success());
            host = Host::start(model.path(), data.path(), &[]);
        }
    }
    // A replay from the start has the live stream's durable events and ids.
    let replay: Vec<(String, String)> = read_events(&events_url(&host), None, 1000)
        .iter()
        .map(|e| (e.id.clone().unwrap(), e.event.clone()))
        .collect();
    assert_eq!(replay, durable);
    // Output URLs in the replay are this host's (its port changed with the restart).
    let outputs = read_events(&events_url(&host), None, 1000);
    let url = outputs.iter().find(|e| e.event == "output").unwrap().data["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with(&host.base), "{url} vs {}", host.base);
    assert_eq!(get_bytes(&url, None).0, 200);
}

#[test]
fn a_full_disk_fails_the_job_with_a_reason_and_leaves_no_face() {
    // With a bucket the disk holds nothing (serve_objects.rs: a bucket that stops answering).
    if on_object_store("a_full_disk_fails_the_job_with_a_reason_and_leaves_no_face") {
        return;
    }
    if !can_mount() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must run this test"
        );
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let model = consistentid_folder();
    let mount = Tmpfs::new(48);
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let host = Host::start(model.path(), &mount.dir, &[]);
    let id = create(&host, &body(&face, 60, false))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events_url = host.url(&format!("/v1/predictions/{id}/events"));
    let mut stream = BufReader::new(
        agent()
            .get(&events_url)
            .call()
            .unwrap()
            .into_body()
            .into_reader(),
    );
    let mut next_event = || next_sse(&mut stream).expect("the stream goes on");
    while next_event().data["step"].as_u64() < Some(3) {}
    let filler = mount.fill();

    // Full: health says so, uploads and creates are 507 with a reason and Retry-After.
    let (_, health) = get(&host.url("/v1/health"), None);
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["detail"].as_str().unwrap().contains("full"),
        "{health}"
    );
    // A small file: the host answers before reading a body, and a large one would still be
    // on its way when the connection closes.
    let (code, p) = upload(&host.base, Some(TOKEN), "me.png", &png16(16, 16));
    assert_eq!(code, 507, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("storage is full"),
        "{p}"
    );
    let (code, p) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &body(&face, 1, false),
        &[],
    );
    assert_eq!(code, 507, "{p}");

    // The job reaches its end (its image cannot be stored) while the disk is full; then space
    // comes back.
    loop {
        let e = next_event();
        let last_step = e.data["total"].as_u64() > Some(0) && e.data["step"] == e.data["total"];
        if last_step || e.event == "error" || e.event == "completed" {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let p = status(&host, &id);
    assert_eq!(p["output"], Value::Null, "{p}");
    std::fs::remove_file(filler).unwrap();
    let done = wait_status(&host, &id, &["failed", "succeeded"]);
    assert_eq!(done["status"], "failed", "{done}; log: {}", host.log());
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("store"), "{error}");
    let events = read_events(
        &host.url(&format!("/v1/predictions/{id}/events")),
        None,
        5000,
    );
    assert_eq!(
        events.last().unwrap().data["status"],
        "failed",
        "{events:?}"
    );
    let (code, _, _) = get_bytes(done["input"]["face_image"].as_str().unwrap(), Some(TOKEN));
    assert_eq!(code, 404, "the face is deleted");
    assert!(!blob_exists(&mount.dir, &astronaut()));
    host.wait_health("ready");
}

/// The next event of a stream being read.
fn next_sse(reader: &mut impl BufRead) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if !event.is_empty() {
                return Some(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                });
            }
        } else if let Some(v) = l.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = l.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
}

fn can_mount() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = std::process::Command::new("umount")
            .arg(dir.path())
            .status();
    }
    ok
}

/// A small tmpfs: a disk that can be filled.
struct Tmpfs {
    _root: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn new(mb: u32) -> Self {
        let root = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(root.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let dir = root.path().join("data");
        Self { _root: root, dir }
    }

    /// Fills the file system to the last byte; the filler's path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while f.write_all(&bytes).is_ok() {}
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self._root.path())
            .status();
    }
}
