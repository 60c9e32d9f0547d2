//! Shared helpers of the integration tests: fixture paths, real-data paths, tolerances.

pub mod browser;
pub mod page;
pub mod train;

use std::path::PathBuf;

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Copies the folder `from` into `to` (made when missing).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A tiny ConsistentID model folder as the fixture scripts assemble it: sd_tiny,
/// bisenet_tiny's face_parsing.pth, consistentid_pipeline's image_encoder, and the fixture
/// checkpoint `checkpoint` (e.g. `consistentid_pipeline/ConsistentID-v1.bin`).
pub fn tiny_model_folder(checkpoint: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture("sd_tiny"), tmp.path());
    copy_dir(
        &fixture("consistentid_pipeline/image_encoder"),
        &tmp.path().join("image_encoder"),
    );
    std::fs::copy(fixture(checkpoint), tmp.path().join("ConsistentID-v1.bin")).unwrap();
    std::fs::copy(
        fixture("bisenet_tiny/face_parsing.pth"),
        tmp.path().join("face_parsing.pth"),
    )
    .unwrap();
    tmp
}

/// The real-data cache filled by `tests/scripts/fetch_real_data.sh`.
///
/// Panics with instructions when it is missing, so a test that needs real data can never pass
/// silently without it.
pub fn real_data(rel: &str) -> PathBuf {
    let root = std::env::var_os("CONSISTENTID_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/consistentid/real-data")
        });
    let path = root.join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `bash tests/scripts/fetch_real_data.sh` first",
        path.display()
    );
    path
}

/// Relative L2 error `‖a − b‖ / ‖b‖` (with `b` the reference).
pub fn rel_l2(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let (mut diff, mut norm) = (0f64, 0f64);
    for (a, b) in actual.iter().zip(expected) {
        diff += f64::from(a - b).powi(2);
        norm += f64::from(*b).powi(2);
    }
    (diff / norm.max(1e-30)).sqrt()
}

/// The f32 tolerance of every parity test: relative L2 error ≤ 1e-4.
pub const REL_TOL: f64 = 1e-4;

/// Asserts `rel_l2(actual, expected) <= REL_TOL`, naming the case.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32]) {
    let err = rel_l2(actual, expected);
    assert!(
        err <= REL_TOL,
        "{what}: relative L2 error {err:e} > {REL_TOL:e}"
    );
}
