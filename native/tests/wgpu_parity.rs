//! The wgpu backend (WGSL kernels) runs the whole tiny ConsistentID pipeline and matches the
//! reference as the CPU backend does. Built with `--features wgpu` (scripts/test.sh does); it
//! needs a Vulkan adapter: Mesa's lavapipe (Vulkan on the CPU) where there is no GPU, which
//! scripts/install-tools.sh installs.
#![cfg(feature = "wgpu")]

mod common;

use common::*;

#[test]
fn the_tiny_consistentid_pipeline_on_wgpu_matches_the_reference() {
    let (got, want, stderr) = replica_run("wgpu", "f32");
    // The same tolerance as the CPU backend's test (stage_consistentid.rs).
    let err = rel_err(&got, &want);
    assert!(err < 1e-3, "relative error {err}");
    // Headless (no XDG_RUNTIME_DIR), Vulkan's drivers and layers leave the terminal clean.
    assert!(
        !stderr.contains("XDG_RUNTIME_DIR") && !stderr.contains("error"),
        "stderr on a headless machine:\n{stderr}"
    );
}

/// With the networks in f16 (WGSL `f16`, lavapipe has it): measured 2.4e-3 max-abs from the
/// f32 reference (the CPU backend in f16: 1.8e-3); the bound is about twice that.
#[test]
fn the_tiny_consistentid_pipeline_on_wgpu_in_f16_stays_near_the_reference() {
    let (got, want) = replica_image("wgpu", "f16");
    let err = max_abs(&got, &want);
    assert!(err < 5e-3 && err > 0.0, "max |f16 - f32 reference| = {err}");
}
