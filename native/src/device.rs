//! Choosing the burn device: CUDA when built with it and a GPU is present, then wgpu when built
//! with it, else the pure-Rust CPU backend; `--device` overrides.

use anyhow::{Result, bail};
use burn::tensor::Device;

/// The `--device` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// The best backend this build and machine offer.
    Auto,
    /// Pure-Rust CPU backend (burn flex).
    Cpu,
    /// NVIDIA GPU through burn-cuda (needs a build with `--features cuda`).
    Cuda,
    /// GPU through wgpu: Vulkan, Metal or DX12 (needs `--features wgpu`).
    Wgpu,
}

/// Whether an NVIDIA driver is visible (device nodes on Linux, the driver library elsewhere).
#[cfg(feature = "cuda")]
fn nvidia_gpu_present() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
        || std::env::var_os("CUDA_VISIBLE_DEVICES").is_some_and(|v| !v.is_empty() && v != "-1")
}

/// Resolves the choice to a device, with a clear error for backends this build lacks.
pub fn select(choice: DeviceChoice) -> Result<(Device, &'static str)> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::flex(), "cpu")),
        DeviceChoice::Cuda => cuda(),
        DeviceChoice::Wgpu => wgpu(),
        DeviceChoice::Auto => {
            #[cfg(feature = "cuda")]
            if nvidia_gpu_present() {
                return cuda();
            }
            #[cfg(feature = "wgpu")]
            return wgpu();
            #[allow(unreachable_code)]
            Ok((Device::flex(), "cpu"))
        }
    }
}

fn cuda() -> Result<(Device, &'static str)> {
    #[cfg(feature = "cuda")]
    return Ok((Device::cuda(0), "cuda"));
    #[allow(unreachable_code)]
    {
        bail!(
            "this binary was built without CUDA; rebuild with `cargo build --release --features cuda`"
        )
    }
}

fn wgpu() -> Result<(Device, &'static str)> {
    #[cfg(feature = "wgpu")]
    return Ok((Device::wgpu(Default::default()), "wgpu"));
    #[allow(unreachable_code)]
    {
        bail!(
            "this binary was built without wgpu; rebuild with `cargo build --release --features wgpu`"
        )
    }
}
