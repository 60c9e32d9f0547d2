//! The host under hostile and careless use, one test per defect found by trying to break it:
//! decompression bombs within the limits, racing creates against the queue bound, silent and
//! slow connections, one upload used by several predictions, recovery and a full disk leaving
//! faces behind, two hosts on one data folder, resuming an event stream, and uploads in
//! `--api-key` mode. All over real HTTP on loopback, bounded in count and time.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::host::*;
use common::*;
use serde_json::{Value, json};

fn astronaut() -> Vec<u8> {
    std::fs::read(real_data("images/astronaut.png")).unwrap()
}

/// A creation body on an uploaded face (or data URI), with a fixed identity (no detection).
fn body(face: &str, steps: u32, keep_face: bool) -> Value {
    json!({ "input": {
        "prompt": "x", "face_image": face, "id_embedding": vec![0.0; 512],
        "num_inference_steps": steps, "start_merge_step": 0, "width": 32, "height": 32,
        "keep_face": keep_face
    }})
}

fn create(host: &Host, body: &Value) -> Value {
    let (code, p) = post_json(&host.url("/v1/predictions"), Some(TOKEN), body, &[]);
    assert_eq!(code, 201, "{p}");
    p
}

/// A PNG of `w`×`h` 16-bit RGBA pixels (tiny on disk, 8 bytes a pixel decoded).
fn png16(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Sixteen);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        let row = vec![0u8; w as usize * 8];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..h {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

#[test]
fn decoding_is_bounded_for_files_that_decode_huge() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &["--paused"]);
    host.wait_health("ready");
    // Over the host's face-photo pixel limit: refused from its header, before any decode,
    // as an upload and as a data URI.
    let bomb = png16(8000, 6000);
    // ~384 MB of pixels in a file well inside the 10 MB upload limit.
    assert!(bomb.len() < 4_000_000, "{} bytes", bomb.len());
    let (code, p) = upload(&host.base, Some(TOKEN), "bomb.png", &bomb);
    assert_eq!(code, 422, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("megapixels") && detail.contains("1536"),
        "{p}"
    );
    use base64::Engine as _;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bomb)
    );
    let (code, p) = post_json(
        &host.url("/v1/predictions"),
        Some(TOKEN),
        &body(&uri, 1, false),
        &[],
    );
    assert_eq!(code, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "face_image", "{p}");

    // Just under the limit, eight at once: each decodes to ~185 MB, but only two decode at a
    // time, so the host's peak memory grows by well under eight times that.
    let big = Arc::new(png16(4096, 4000));
    let before = host.peak_rss_kb();
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (base, big, start) = (host.base.clone(), big.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                upload(&base, Some(TOKEN), "big.png", &big).0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 201);
    }
    let grew_mb = (host.peak_rss_kb() - before) / 1024;
    // The bound stated in the README: two decodes of at most ~185 MB each.
    assert!(
        grew_mb < 600,
        "peak memory grew by {grew_mb} MB for 8 parallel decodes"
    );
    let (code, _) = get(&host.url("/v1/health"), None);
    assert_eq!(code, 200);
}

#[test]
fn the_queue_bound_holds_under_60_parallel_creates() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(
        model.path(),
        data.path(),
        &[
            "--paused",
            "--queue-size",
            "5",
            "--owner-queue",
            "3",
            "--rate-limit",
            "0",
        ],
    );
    host.wait_health("ready");
    // Two clients, 30 creates each, all at once, on faces they uploaded once.
    let tokens = ["client-a-token", "client-b-token"];
    let faces: Vec<String> = tokens
        .iter()
        .map(|t| {
            let (code, file) = upload(&host.base, Some(t), "me.png", &astronaut());
            assert_eq!(code, 201, "{file}");
            file["urls"]["get"].as_str().unwrap().to_string()
        })
        .collect();
    let start = Arc::new(Barrier::new(60));
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let (url, start) = (host.url("/v1/predictions"), start.clone());
            let body = body(&faces[i % 2], 1, false);
            let token = tokens[i % 2];
            std::thread::spawn(move || {
                start.wait();
                (i % 2, post_json(&url, Some(token), &body, &[]))
            })
        })
        .collect();
    let mut accepted = [0usize; 2];
    for t in threads {
        let (who, (code, p)) = t.join().unwrap();
        match code {
            201 => accepted[who] += 1,
            429 => assert!(p["detail"].as_str().unwrap().contains("queue"), "{p}"),
            _ => panic!("{code}: {p}"),
        }
    }
    assert_eq!(accepted[0] + accepted[1], 5, "{accepted:?}");
    assert!(
        accepted.iter().all(|&n| n <= 3),
        "one client's share: {accepted:?}"
    );
    let (_, health) = get(&host.url("/v1/health"), None);
    assert_eq!(health["queue_length"], 5, "{health}");
}

/// Reads until the peer closes (Ok(bytes)) or `limit` passes (Err).
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, Vec<u8>> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(_) => return Err(got),
        }
    }
}

#[test]
fn silent_slow_and_idle_connections_are_closed() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(
        model.path(),
        data.path(),
        &[
            "--paused",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "3s",
            "--max-connections",
            "6",
        ],
    );
    let authority = host.base.trim_start_matches("http://").to_string();
    let connect = || TcpStream::connect(&authority).unwrap();
    let limit = Duration::from_secs(10);

    // A connection that never says anything.
    let t = Instant::now();
    let mut silent = connect();
    assert!(read_until_closed(&mut silent, limit).is_ok(), "still open");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // Headers that never end.
    let t = Instant::now();
    let mut slow = connect();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(read_until_closed(&mut slow, limit).is_ok(), "still open");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // A body that stops: answered 408, then closed.
    let t = Instant::now();
    let mut body = connect();
    write!(
        body,
        "POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"input\":"
    )
    .unwrap();
    let answer = read_until_closed(&mut body, limit).expect("still open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // Idle after a request on a kept-alive connection.
    let t = Instant::now();
    let mut idle = connect();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut idle, limit).expect("still open");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());

    // The connection cap: with six held open, a seventh is closed at once, and the host
    // answers again once the silent ones time out.
    let held: Vec<TcpStream> = (0..6).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut extra = connect();
    let _ = extra.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = read_until_closed(&mut extra, limit).expect("still open");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(3));
    let (code, _) = get(&host.url("/v1/health"), None);
    assert_eq!(code, 200);
    drop(held);
}

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

/// Whether the content-addressed store holds `bytes`.
fn blob_exists(data: &std::path::Path, bytes: &[u8]) -> bool {
    use sha2::Digest as _;
    let sha: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    data.join("files").join(&sha[..2]).join(&sha).exists()
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
fn uploads_need_a_key_in_api_key_mode() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &["--paused", "--api-key", "k-1"]);
    // Refused before the body is read: a small file, so that the answer is not lost to a
    // broken pipe while a large body is still being sent.
    let small = png16(16, 16);
    assert_eq!(upload(&host.base, None, "me.png", &small).0, 401);
    let (code, p) = upload(&host.base, Some(TOKEN), "me.png", &small);
    assert_eq!(code, 403, "{p}");
    assert_eq!(
        upload(&host.base, Some("k-1"), "me.png", &astronaut()).0,
        201
    );
}

#[test]
fn a_full_disk_fails_the_job_with_a_reason_and_leaves_no_face() {
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
