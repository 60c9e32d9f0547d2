//! Headless Chromium against `consistentid serve`, for the browser end-to-end test and the
//! browser benchmark: the host on a free port, chromedriver, and a Chromium with its own profile,
//! with or without WebGPU.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

/// The `consistentid` binary of this target dir (built by `cargo test --workspace`), found from
/// the running test (`deps/`) or example (`examples/`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("consistentid");
    assert!(
        bin.exists(),
        "{} missing: run `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// `consistentid serve` on a free port, killed on drop.
pub struct Host(pub Child, pub String);

impl Host {
    pub fn start(model: &Path, data: &Path, dist: &Path) -> Self {
        Self::start_with(model, data, dist, &[])
    }

    /// With more `serve` arguments.
    /// With `CONSISTENTID_TEST_SERVE_DATABASE`, on PostgreSQL: a database per data folder;
    /// with `CONSISTENTID_TEST_SERVE_OBJECT_STORE` too (an S3 endpoint), its files in a bucket
    /// per data folder.
    pub fn start_with(model: &Path, data: &Path, dist: &Path, extra: &[&str]) -> Self {
        let mut command = Command::new(binary());
        if let Ok(admin) = std::env::var("CONSISTENTID_TEST_SERVE_DATABASE") {
            let name = format!(
                "web_{}",
                data.file_name().unwrap().to_string_lossy().to_lowercase()
            )
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
            if let Ok(endpoint) = std::env::var("CONSISTENTID_TEST_SERVE_OBJECT_STORE") {
                let bucket = name.replace('_', "-");
                create_bucket(&endpoint, &bucket);
                command.env(
                    "CONSISTENTID_OBJECT_STORE",
                    format!(
                        "s3://{bucket}/files?endpoint={endpoint}&region=us-east-1&access_key_id=test&secret_access_key=test"
                    ),
                );
            }
            let _ = Command::new("psql")
                .args([
                    admin.as_str(),
                    "-q",
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .stderr(Stdio::null())
                .status();
            let (server, _) = admin.rsplit_once('/').unwrap();
            command.env("CONSISTENTID_DATABASE_URL", format!("{server}/{name}"));
        }
        let mut child = command
            .args(["serve", "--port", "0", "--model"])
            .arg(model)
            .arg("--data")
            .arg(data)
            .arg("--web")
            .arg(dist)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut base = String::new();
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('/')
                    .to_string();
                break;
            }
        }
        assert!(!base.is_empty(), "the host did not start");
        Self(child, base)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, killed on drop.
pub struct Driver(pub Child, pub u16);

impl Driver {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (apt-get install chromium chromium-driver)");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self(child, port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// A headless Chromium with its own profile; `webgpu` gives it SwiftShader's WebGPU adapter.
pub async fn browser(driver: &Driver, profile: &Path, webgpu: bool) -> Client {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1000,1400".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if webgpu {
        args.push("--enable-unsafe-webgpu".into());
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("connect to chromedriver")
}

/// Creates a bucket on a local S3 server that checks no credentials (moto): `PUT /bucket`.
fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("the S3 server answers");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
