//! The host's limits under hostile load, one test per defect found by trying to break it:
//! decompression bombs within the limits, racing creates against the queue bound, silent and
//! slow connections, and uploads in `--api-key` mode. All over real HTTP on loopback, bounded
//! in count and time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::host::*;
use common::hostile::*;
use common::*;

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
