//! The hosts' files in a bucket of a local S3 server (moto): the bucket of a data folder, and
//! what the tests can see of it without signing requests.
#![allow(dead_code)]

use std::path::Path;

use super::host::{agent, get_bytes};

/// Whether the hosts keep their files in a bucket (`CONSISTENTID_TEST_SERVE_OBJECT_STORE`
/// with a database); a test of a promise about the local disk says so and returns.
pub fn on_object_store(test: &str) -> bool {
    let on = std::env::var_os("CONSISTENTID_TEST_SERVE_DATABASE").is_some()
        && std::env::var_os("CONSISTENTID_TEST_SERVE_OBJECT_STORE").is_some();
    if on {
        eprintln!("{test}: a promise about the local disk; the files are in a bucket");
    }
    on
}

/// A bucket on the S3 server named by `CONSISTENTID_TEST_SERVE_OBJECT_STORE` for a data
/// folder (created on first use), as an `--object-store` URL; `None` without that server.
pub fn serve_bucket(data: &Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let endpoint = std::env::var("CONSISTENTID_TEST_SERVE_OBJECT_STORE").ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    Some(bucket_url(&endpoint, &format!("serve-{:016x}", h.finish())))
}

/// Whether the bucket of a data folder (see [`serve_bucket`]) holds an object of the size of
/// `bytes` (moto lists sizes to anyone, but serves objects only to signed requests); `false`
/// without an S3 server.
pub fn bucket_holds(data: &Path, bytes: &[u8]) -> bool {
    use std::hash::{Hash, Hasher};
    let Ok(endpoint) = std::env::var("CONSISTENTID_TEST_SERVE_OBJECT_STORE") else {
        return false;
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let bucket = format!("{endpoint}/serve-{:016x}", h.finish());
    let (code, _, listing) = get_bytes(&format!("{bucket}?list-type=2&max-keys=1000"), None);
    if code != 200 {
        return false;
    }
    let size = format!("<Size>{}</Size>", bytes.len());
    String::from_utf8_lossy(&listing)
        .split("<Contents>")
        .skip(1)
        .any(|entry| entry.contains(&size))
}

/// Creates `bucket` on the S3 server at `endpoint` (again: no harm) and returns its
/// `--object-store` URL (moto checks no credentials; object_store wants some).
pub fn bucket_url(endpoint: &str, bucket: &str) -> String {
    let created = agent()
        .put(&format!("{endpoint}/{bucket}"))
        .send_empty()
        .map(|r| r.status().as_u16());
    assert!(matches!(created, Ok(200)), "{created:?}");
    format!(
        "s3://{bucket}/files?endpoint={endpoint}&region=us-east-1&access_key_id=test&secret_access_key=test"
    )
}
