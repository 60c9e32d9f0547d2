//! A `consistentid serve` process for the host tests: started on a free loopback port with
//! its own data folder, driven over real HTTP (ureq), stopped with SIGTERM or `kill -9`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A running host.
pub struct Host {
    pub child: Child,
    pub base: String,
    /// stderr lines so far (collected by a thread).
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Host {
    /// Starts `consistentid serve --model model --data data --port 0 …` and waits for its URL.
    /// With `CONSISTENTID_TEST_SERVE_DATABASE` (a PostgreSQL server's URL) the host keeps its
    /// store in a database of that server named after the data folder, so the same tests run
    /// on PostgreSQL (and a restart on the same folder finds the same database); with
    /// `CONSISTENTID_TEST_SERVE_OBJECT_STORE` too (an S3 endpoint) its files go to a bucket of
    /// that server named after the data folder.
    pub fn start(model: &Path, data: &Path, extra: &[&str]) -> Host {
        let database = serve_database(data);
        let bucket = database
            .as_ref()
            .and_then(|_| super::bucket::serve_bucket(data));
        let mut args: Vec<&str> = extra.to_vec();
        if let Some(url) = &bucket {
            args.extend(["--object-store", url.as_str()]);
        }
        Self::start_on(model, data, database.as_deref(), &args)
    }

    /// A host whose store is the PostgreSQL database `database` (or SQLite in `data`).
    pub fn start_on(model: &Path, data: &Path, database: Option<&str>, extra: &[&str]) -> Host {
        Self::start_with(model, data, database, extra, &[])
    }

    /// As [`Host::start_on`], with environment variables.
    pub fn start_with(
        model: &Path,
        data: &Path,
        database: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Host {
        let mut command = Command::new(env!("CARGO_BIN_EXE_consistentid"));
        command.envs(env.iter().copied());
        command
            .args(["serve", "--port", "0", "--model"])
            .arg(model)
            .arg("--data")
            .arg(data)
            .args(extra);
        if let Some(url) = database {
            command.env("CONSISTENTID_DATABASE_URL", url);
            // A short lease: a host killed mid-job has its job taken back soon after a restart
            // (the embedded store does that at once).
            if !extra.contains(&"--lease") {
                command.args(["--lease", "2s"]);
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_end_matches('/');
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the host did not print its URL; stderr: {:?}",
                    log.lock().unwrap()
                );
            }
        };
        Host { child, base, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Polls /v1/health until `status` (bounded).
    pub fn wait_health(&self, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, body) = get(&format!("{}/v1/health", self.base), None);
            if code == 200 && body["status"] == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "health never {status}: {body}; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then waits for the exit (bounded).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the host did not stop on SIGTERM; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal (`STOP`, `CONT`…) and lets the process be.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// `kill -9`.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory in kB (Linux).
    pub fn rss_kb(&self) -> u64 {
        self.proc_status_kb("VmRSS:")
    }

    /// The peak resident memory so far, in kB (Linux).
    pub fn peak_rss_kb(&self) -> u64 {
        self.proc_status_kb("VmHWM:")
    }

    fn proc_status_kb(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Whether the hosts keep their store in PostgreSQL (`CONSISTENTID_TEST_SERVE_DATABASE`);
/// a test of a promise only the embedded store makes says so and returns when they do.
pub fn on_postgres(test: &str) -> bool {
    let on = std::env::var_os("CONSISTENTID_TEST_SERVE_DATABASE").is_some();
    if on {
        eprintln!("{test}: the embedded store's own promise; not run on PostgreSQL");
    }
    on
}

/// A fresh database on the test server (`CONSISTENTID_TEST_DATABASE_URL`); `None` without
/// one, which CI does not allow.
pub fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("CONSISTENTID_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must give these tests a database (CONSISTENTID_TEST_DATABASE_URL; scripts/test.sh starts one)"
        );
        eprintln!("skipped: no database (set CONSISTENTID_TEST_DATABASE_URL)");
        return None;
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let created = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("CREATE DATABASE t_{name}"),
        ])
        .status()
        .unwrap();
    assert!(created.success());
    let (server, _) = admin.rsplit_once('/')?;
    Some(format!("{server}/t_{name}"))
}

/// One value (rows joined by newlines) of a query on a test database, through psql.
pub fn sql(database: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([database, "-At", "-v", "ON_ERROR_STOP=1", "-c", query])
        .output()
        .unwrap();
    assert!(out.status.success(), "{query}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The database of a data folder on the server named by `CONSISTENTID_TEST_SERVE_DATABASE`,
/// created on first use; `None` without that server.
pub fn serve_database(data: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let admin = std::env::var("CONSISTENTID_TEST_SERVE_DATABASE").ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let name = format!("serve_{:016x}", h.finish());
    // "already exists" on a restart is what we want.
    let _ = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .stderr(Stdio::null())
        .status();
    let (base, _) = admin.rsplit_once('/')?;
    Some(format!("{base}/{name}"))
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut resp = resp.expect("an HTTP answer");
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// GET with an optional token: (status, JSON or the text as a string).
pub fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    finish(req.call())
}

/// GET returning the status, content type and raw bytes.
pub fn get_bytes(url: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().expect("an HTTP answer");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let status = resp.status().as_u16();
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .unwrap();
    (status, ct, bytes)
}

/// Uploads `bytes` as a file (multipart, part `content`): (status, JSON body).
pub fn upload(base: &str, token: Option<&str>, name: &str, bytes: &[u8]) -> (u16, Value) {
    let (ct, body) = multipart(name, "image/png", bytes);
    post_raw(&format!("{base}/v1/files"), token, &ct, body, &[])
}

/// POST a JSON value with the token and extra headers.
pub fn post_json(
    url: &str,
    token: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    post_raw(
        url,
        token,
        "application/json",
        body.to_string().into_bytes(),
        headers,
    )
}

/// POST raw bytes with a content type; returns (status, JSON body) and checks that error
/// bodies are problem+json.
pub fn post_raw(
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = agent().post(url).content_type(content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req.send(&body[..]).expect("an HTTP answer");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status}: {text}");
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn delete(url: &str, token: Option<&str>) -> u16 {
    let mut req = agent().delete(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    req.call().expect("an HTTP answer").status().as_u16()
}

/// A multipart body with one `content` part.
pub fn multipart(name: &str, content_type: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----consistentid-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// Reads a prediction's event stream until `completed` (or `max` events, or the time limit).
pub fn read_events(url: &str, last_event_id: Option<&str>, max: usize) -> Vec<Sse> {
    let mut req = agent().get(url).header("Accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.call().expect("an HTTP answer");
    assert_eq!(resp.status().as_u16(), 200);
    let reader = BufReader::new(resp.into_body().into_reader());
    parse_events(reader, max)
}

pub fn parse_events(reader: impl Read, max: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    let (mut id, mut event, mut data) = (None, String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(300);
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if line.is_empty() {
            if !event.is_empty() {
                let done = event == "completed";
                events.push(Sse {
                    id: id.take(),
                    event: std::mem::take(&mut event),
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                });
                data.clear();
                if done || events.len() >= max {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "event stream too long");
            continue;
        }
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    events
}

/// A data URI of a file.
pub fn data_uri(path: &Path, mime: &str) -> String {
    use base64::Engine as _;
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
    )
}

/// A fresh temporary data folder.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

pub fn path_buf(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// POST as curl does for large bodies: `Expect: 100-continue` first, the body only if the
/// host asks for it. Returns (status, body text).
pub fn post_expect_continue(
    url: &str,
    token: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::Write;
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap();
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    if status_line.contains(" 100 ") {
        let mut blank = String::new();
        reader.read_line(&mut blank).unwrap();
        let _ = stream.write_all(body);
        status_line.clear();
        reader.read_line(&mut status_line).unwrap();
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    (status, rest)
}

/// A prediction as its owner (`TOKEN`) reads it.
pub fn status(host: &Host, id: &str) -> Value {
    let (code, p) = get(&host.url(&format!("/v1/predictions/{id}")), Some(TOKEN));
    assert_eq!(code, 200, "{p}");
    p
}

/// Polls until the prediction's status is one of `want` (bounded).
pub fn wait_status(host: &Host, id: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let p = status(host, id);
        if want.contains(&p["status"].as_str().unwrap_or("")) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "never {want:?}: {p}; log: {}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the job has done a few denoising steps (from its event stream).
pub fn wait_steps(host: &Host, id: &str) {
    let events = read_events(&host.url(&format!("/v1/predictions/{id}/events")), None, 40);
    assert!(
        events
            .iter()
            .any(|e| e.event == "progress" && e.data["step"].as_u64() >= Some(3)),
        "{events:?}"
    );
}
