//! Uploads and images in an S3-compatible bucket (`serve --object-store s3://…`, moto's S3
//! server on loopback), and a bucket that stops answering (the server frozen with SIGSTOP):
//! uploads and downloads get 503 with `Retry-After` (never 404), a job whose face cannot be
//! read goes back to the queue rather than failing, and runs once the bucket answers again;
//! SeaweedFS killed while a job computes and restarted on its folder: the job goes back to the
//! queue, then runs, and the files stored before the crash are all there.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bucket::*;
use common::host::*;
use common::*;
use serde_json::json;

/// A moto S3 server of this test's own (scripts/moto.sh), frozen and thawed mid-test.
struct Moto {
    url: String,
    pid: String,
}

impl Moto {
    fn start() -> Self {
        let text = script("moto.sh", &[]);
        let (url, pid) = text.trim().split_once(' ').unwrap();
        Self {
            url: url.to_string(),
            pid: pid.to_string(),
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// The keys in a bucket.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let (code, _, listing) = get_bytes(&format!("{}/{bucket}?list-type=2", self.url), None);
        assert_eq!(code, 200);
        String::from_utf8_lossy(&listing)
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next().map(str::to_string))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

fn job(face: &str) -> serde_json::Value {
    json!({ "input": {
        "prompt": "x", "face_image": face, "id_embedding": vec![0.0; 512],
        "num_inference_steps": 2, "start_merge_step": 0, "width": 32, "height": 32, "seed": 5
    }})
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_bucket_that_stops_answering_is_503_and_jobs_wait_for_it() {
    let Some(database) = fresh_database() else {
        return;
    };
    let moto = Moto::start();
    // Short timeouts: a frozen server shows as unavailable within seconds.
    let bucket = format!(
        "{}&timeout=1s&connect_timeout=1s",
        bucket_url(&moto.url, "outage")
    );
    let model = consistentid_folder();
    let data = data_dir();
    let (model, data) = (model.path(), data.path());
    let object_store = ["--object-store", bucket.as_str()];
    let api = Host::start_on(
        model,
        data,
        Some(&database),
        &[&["--role", "api"][..], &object_store].concat(),
    );
    let health = get(&api.url("/v1/health"), None).1;
    assert!(
        !health.to_string().contains("secret_access_key=test"),
        "{health}"
    );
    assert!(
        !api.log().contains("secret_access_key=test"),
        "{}",
        api.log()
    );

    // Queued with its face in the bucket (no worker yet), and nothing on disk.
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let (code, created) = post_json(&api.url("/v1/predictions"), Some(TOKEN), &job(&face), &[]);
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(moto.keys("outage").len(), 1, "{:?}", moto.keys("outage"));
    assert!(!data.join("objects").exists());

    // The bucket stops answering: uploads are 503 with Retry-After, nothing stored.
    moto.signal("STOP");
    let photo = std::fs::read(real_data("images/astronaut.png")).unwrap();
    let (code, problem) = upload(&api.base, Some(TOKEN), "face.png", &photo);
    let refused = post_json(&api.url("/v1/predictions"), Some(TOKEN), &job(&face), &[]);
    assert_eq!((code, refused.0), (503, 503), "{problem} {}", refused.1);
    assert!(
        problem["detail"].as_str().unwrap().contains("storage"),
        "{problem}"
    );
    // A worker that cannot read the face hands the job back rather than failing it.
    let worker = Host::start_with(
        model,
        data,
        Some(&database),
        &[
            &["--role", "worker", "--heartbeat", "400ms"][..],
            &object_store,
        ]
        .concat(),
        &[("CONSISTENTID_TEST_ENGINE", "steps:2,step_ms:5")],
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while !worker.log().contains("the job is queued again") {
        assert!(Instant::now() < deadline, "{}", worker.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let waiting = status(&api, &id);
    assert!(
        ["starting", "processing"].contains(&waiting["status"].as_str().unwrap()),
        "{waiting}"
    );

    // The bucket answers again: the job runs, its image is in the bucket and served.
    moto.signal("CONT");
    let done = wait_status(&api, &id, &["succeeded", "failed", "canceled"]);
    assert_eq!(done["status"], "succeeded", "{done}; {}", worker.log());
    let output = done["output"][0].as_str().unwrap().to_string();
    let (code, content_type, png) = get_bytes(&output, Some(TOKEN));
    assert_eq!((code, content_type.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    // Its face goes from the bucket as the job's end is done; its image stays. (The refused
    // uploads may have reached the frozen server after their requests timed out: objects no
    // file names, which the janitor's sweep deletes an hour on.)
    let face_key = format!(
        "files/u/{}",
        sql(
            &database,
            &format!("SELECT face_file FROM predictions WHERE id = '{id}'")
        )
    );
    let output_key = format!("files/o/{}", output.rsplit('/').next().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let keys = loop {
        let keys = moto.keys("outage");
        if !keys.contains(&face_key) || Instant::now() > deadline {
            break keys;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!keys.contains(&face_key), "{face_key} {keys:?}");
    assert!(keys.contains(&output_key), "{output_key} {keys:?}");
    assert_eq!(
        sql(
            &database,
            "SELECT count(*) FROM files WHERE kind = 'upload'"
        ),
        "0"
    );

    // A download while the bucket is away is 503, never 404.
    moto.signal("STOP");
    let (code, _, _) = get_bytes(&output, Some(TOKEN));
    moto.signal("CONT");
    assert_eq!(code, 503);
    let (code, _, _) = get_bytes(&output, Some(TOKEN));
    assert_eq!(code, 200);
}

/// SeaweedFS of this test's own (scripts/seaweedfs.sh): objects on disk, so a crash and a
/// restart on the same folder and port bring the same bucket back.
struct Seaweed {
    dir: tempfile::TempDir,
    url: String,
    pid: String,
    port: String,
}

impl Seaweed {
    fn script(args: &[&str]) -> String {
        script("seaweedfs.sh", args)
    }

    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Self::script(&[dir.path().to_str().unwrap()]);
        let parts: Vec<&str> = out.split_whitespace().collect();
        Self {
            url: parts[0].to_string(),
            pid: parts[1].to_string(),
            port: parts[2].to_string(),
            dir,
        }
    }

    /// `kill -9`.
    fn crash(&self) {
        Self::script(&["stop", &self.pid]);
    }

    /// The same server again: its folder, its port.
    fn restart(&mut self) {
        let out = Self::script(&[self.dir.path().to_str().unwrap(), &self.port]);
        self.pid = out.split_whitespace().nth(1).unwrap().to_string();
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.crash();
    }
}

#[cfg_attr(
    not(feature = "test-engine"),
    ignore = "needs the test engine (--features consistentid-native/test-engine)"
)]
#[test]
fn a_bucket_that_crashes_mid_job_comes_back_with_its_files_and_the_job_runs_again() {
    let Some(database) = fresh_database() else {
        return;
    };
    let mut weed = Seaweed::start();
    let bucket = format!(
        "s3://consistentid/demo?endpoint={}&region=us-east-1&access_key_id=any&secret_access_key=any&timeout=1s&connect_timeout=1s",
        weed.url
    );
    let (model, data) = (consistentid_folder(), data_dir());
    let host = Host::start_with(
        model.path(),
        data.path(),
        Some(&database),
        &["--object-store", &bucket, "--heartbeat", "400ms"],
        &[("CONSISTENTID_TEST_ENGINE", "steps:40,step_ms:50")],
    );
    host.wait_health("ready");
    let photo = std::fs::read(real_data("images/astronaut.png")).unwrap();
    let (code, file) = upload(&host.base, Some(TOKEN), "face.png", &photo);
    assert_eq!(code, 201, "{file}");
    let file_url = host.url(&format!("/v1/files/{}", file["id"].as_str().unwrap()));
    let face = data_uri(&real_data("images/astronaut.png"), "image/png");
    let (code, created) = post_json(&host.url("/v1/predictions"), Some(TOKEN), &job(&face), &[]);
    assert_eq!(code, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // The bucket dies while the job computes: its image cannot be written, so the job goes
    // back to the queue; meanwhile files are 503, never 404.
    wait_status(&host, &id, &["processing"]);
    weed.crash();
    let (code, _, _) = get_bytes(&file_url, Some(TOKEN));
    assert_eq!(code, 503);
    assert_eq!(upload(&host.base, Some(TOKEN), "face.png", &photo).0, 503);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !host.log().contains("the job is queued again") {
        assert!(Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(Duration::from_millis(100));
    }

    // Back on the same folder: the face stored before the crash is read again, the job
    // runs to its end, and the upload is served with its bytes.
    weed.restart();
    let done = wait_status(&host, &id, &["succeeded", "failed", "canceled"]);
    assert_eq!(done["status"], "succeeded", "{done}; {}", host.log());
    let outputs = done["output"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "{done}");
    let (code, content_type, png) = get_bytes(outputs[0].as_str().unwrap(), Some(TOKEN));
    assert_eq!((code, content_type.as_str()), (200, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    let (code, _, bytes) = get_bytes(&file_url, Some(TOKEN));
    assert_eq!((code, bytes == photo), (200, true));
    // One set of outputs, each with its object.
    assert_eq!(
        sql(
            &database,
            &format!("SELECT count(*) FROM files WHERE prediction = '{id}' AND kind = 'output'")
        ),
        "1"
    );
}
