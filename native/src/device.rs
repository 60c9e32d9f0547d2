//! Choosing the burn device: CUDA when built with it and a GPU is present, then wgpu when built
//! with it and a hardware adapter is present, else the pure-Rust CPU backend; `--device`
//! overrides (`--device wgpu` also takes a software adapter such as Mesa's lavapipe).

use anyhow::{Result, bail};
use burn::tensor::{DType, Device};

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

/// The `--dtype` choices: the float type the diffusion networks (text encoder, UNet with its
/// adapters, VAE, CLIP ViT-H) keep their weights in and compute in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeChoice {
    /// f16 on CUDA (as the official pipeline runs), f32 elsewhere.
    Auto,
    F32,
    F16,
    Bf16,
}

impl DtypeChoice {
    /// The float type for a device of `backend` (as [`select`] names it).
    pub fn resolve(self, backend: &str) -> DType {
        match self {
            Self::Auto if backend == "cuda" => DType::F16,
            Self::Auto | Self::F32 => DType::F32,
            Self::F16 => DType::F16,
            Self::Bf16 => DType::BF16,
        }
    }

    /// The float type for the `stage` commands, which compare against f32 references: f32
    /// unless asked for otherwise.
    pub fn stage(self) -> DType {
        self.resolve("")
    }
}

/// How many images share one UNet batch by default: on a GPU a batch keeps the device busy
/// (up to 4 SD1.5 images fit in a few GB in f16); on the CPU backend it gains nothing.
pub fn default_batch(backend: &str) -> usize {
    if backend == "cpu" { 1 } else { 4 }
}

/// Whether an NVIDIA driver is visible (device nodes on Linux, the driver library elsewhere).
#[cfg(feature = "cuda")]
pub fn nvidia_gpu_present() -> bool {
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
            if hardware_adapter_present() {
                return wgpu();
            }
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

/// Whether wgpu sees a GPU; a software rasteriser (lavapipe, SwiftShader) is slower than the
/// CPU backend, so `auto` does not pick it.
#[cfg(feature = "wgpu")]
fn hardware_adapter_present() -> bool {
    use burn_wgpu::wgpu;
    // On Linux a GPU that Vulkan can drive has a DRM render node. Without one there is nothing
    // to find, and probing would load every installed Vulkan driver, some of which print
    // `XDG_RUNTIME_DIR is invalid` lines on headless machines.
    #[cfg(target_os = "linux")]
    if !std::fs::read_dir("/dev/dri").is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    }) {
        return false;
    }
    // Vulkan, Metal, DX12: the backends burn-wgpu runs on (probing GL would only add noise).
    let backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = consistentid_core::poll::block_on(instance.enumerate_adapters(backends));
    adapters
        .iter()
        .any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
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
