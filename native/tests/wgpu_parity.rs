//! The wgpu backend (WGSL kernels) runs the whole tiny ConsistentID pipeline and matches the
//! reference as the CPU backend does. Built with `--features wgpu` (scripts/test.sh does); it
//! needs a Vulkan adapter: Mesa's lavapipe (Vulkan on the CPU) where there is no GPU, which
//! scripts/install-tools.sh installs.
#![cfg(feature = "wgpu")]

mod common;

use common::*;
use consistentid_core::tensor_io::TensorFile;

#[test]
fn the_tiny_consistentid_pipeline_on_wgpu_matches_the_reference() {
    let dir = consistentid_folder();
    let out = dir.path().join("o.safetensors");
    let expected = fixture("consistentid_pipeline/expected.safetensors");
    let want_bytes = std::fs::read(&expected).unwrap();
    let want = TensorFile::parse("want", &want_bytes).unwrap();
    let args = [
        vec![
            "--device".to_string(),
            "wgpu".into(),
            "stage".into(),
            "consistentid".into(),
        ],
        replica_args(dir.path(), &out),
        replica_denoise_args(),
    ]
    .concat();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{stderr}\n(no Vulkan adapter? install mesa-vulkan-drivers)"
    );
    let bytes = read_out(&out);
    let got = TensorFile::parse("o", &bytes).unwrap();
    // The same tolerance as the CPU backend's test (stage_consistentid.rs).
    let err = rel_err(&got.f32("image").unwrap().0, &want.f32("image").unwrap().0);
    assert!(err < 1e-3, "relative error {err}");
}
