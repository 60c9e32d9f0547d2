//! The web app end to end in headless Chromium: the page built by `trunk build` (dist/) is
//! served on loopback, a real face photo (astronaut.png, public domain) is uploaded through the
//! file input, and the page must show the picture and report its size in the status line.
//! Needs Debian's `chromium` + `chromium-driver` (installed by scripts/install-tools.sh).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use consistentid_tests::real_data;
use fantoccini::{ClientBuilder, Locator};

/// Serves `root` over HTTP/1.1 on a free loopback port (one thread, one request per connection).
fn serve(root: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = respond(stream, &root);
        }
    });
    port
}

fn respond(mut stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let file = root.join(if path.is_empty() { "index.html" } else { path });
    let (status, body) = match std::fs::read(&file) {
        Ok(body) if !path.contains("..") => ("200 OK", body),
        _ => ("404 Not Found", Vec::new()),
    };
    let mime = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(&body)
}

/// chromedriver on a free port, killed on drop.
struct Driver(Child, u16);

impl Driver {
    fn start() -> Self {
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

#[tokio::test(flavor = "multi_thread")]
async fn uploading_a_face_shows_it_with_its_size() {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dist");
    assert!(
        dist.join("index.html").exists(),
        "build the web app first: `trunk build` (scripts/test.sh does)"
    );
    let photo = real_data("images/astronaut.png");
    let port = serve(dist);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("connect to chromedriver");
    client
        .goto(&format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    let input = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#face-input"))
        .await
        .expect("the upload input appears once the wasm app mounts");
    let status = client.find(Locator::Css("#status")).await.unwrap();
    assert!(status.text().await.unwrap().contains("Choose a photo"));
    input.send_keys(photo.to_str().unwrap()).await.unwrap();
    let want = "Loaded astronaut.png (512×512 px).";
    let start = Instant::now();
    loop {
        let text = status.text().await.unwrap();
        if text == want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "status line: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let preview = client.find(Locator::Css("#face-preview")).await.unwrap();
    let src = preview.attr("src").await.unwrap().unwrap_or_default();
    assert!(src.starts_with("blob:"), "{src}");
    client.close().await.unwrap();
}
