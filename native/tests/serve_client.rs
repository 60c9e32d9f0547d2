//! A real client: the official `replicate` Python client (tests/scripts/requirements-client.txt)
//! with its base URL set to the host runs `client.run`, uploads with `files.create`, and
//! creates, gets, lists and cancels predictions (tests/scripts/replicate_client_check.py).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::host::*;
use common::*;
use consistentid_core::tensor_io::TensorFile;

/// The client's Python: `$CONSISTENTID_CLIENT_PYTHON` (scripts/test.sh sets it up with
/// scripts/client-venv.sh), else that script's default venv.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CONSISTENTID_CLIENT_PYTHON") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scripts/client-venv.sh"
        ))
        .output()
        .expect("bash runs scripts/client-venv.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
fn the_official_replicate_client_works_against_the_host() {
    let model = consistentid_folder();
    let data = data_dir();
    let host = Host::start(model.path(), data.path(), &[]);
    host.wait_health("ready");
    let bytes = std::fs::read(fixture("consistentid_pipeline/expected.safetensors")).unwrap();
    let emb = TensorFile::parse("e", &bytes)
        .unwrap()
        .f32("id_embedding")
        .unwrap()
        .0;
    let emb_path = data.path().join("embedding.json");
    std::fs::write(&emb_path, serde_json::to_string(&emb).unwrap()).unwrap();
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/scripts/replicate_client_check.py"
        ))
        .arg(&host.base)
        .arg(real_data("images/astronaut.png"))
        .arg(&emb_path)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "stdout: {stdout}\nstderr: {}\nhost log: {}",
        String::from_utf8_lossy(&out.stderr),
        host.log()
    );
}
