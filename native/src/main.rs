//! The `consistentid` command.

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "wgpu", target_os = "linux"))]
    headless::quiet_vulkan_device_select();
    #[cfg(feature = "cuda")]
    burn_default::cpu_without_nvidia();
    consistentid_native::cli::main()
}

/// Environment written at start, as `headless` below (see the lint note in Cargo.toml).
#[cfg(feature = "cuda")]
#[allow(unsafe_code)]
mod burn_default {
    /// burn materialises some state on its default device (a loaded optimizer state when
    /// `train --resume` continues), which in a CUDA build is CUDA even where there is no
    /// NVIDIA GPU, and fails there. Without one the default becomes the CPU; a value the user
    /// set is kept.
    pub fn cpu_without_nvidia() {
        if std::env::var_os("BURN_DEVICE").is_none()
            && !consistentid_native::device::nvidia_gpu_present()
        {
            // SAFETY: at the start of `main`, before any thread of ours or of a library exists,
            // so nothing can read the environment while it changes.
            unsafe { std::env::set_var("BURN_DEVICE", "flex") };
        }
    }
}

/// The one place this workspace writes its own environment (see the lint note in Cargo.toml).
#[cfg(all(feature = "wgpu", target_os = "linux"))]
#[allow(unsafe_code)]
mod headless {
    /// Mesa's implicit Vulkan layer `VK_LAYER_MESA_device_select` asks the Wayland compositor
    /// for its GPU whenever the Wayland surface extension is enabled, which wgpu always does on
    /// Linux; without a session (no `XDG_RUNTIME_DIR`: a server, a container, CI) libwayland then
    /// prints `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` several times
    /// into the user's terminal. There is no compositor to ask and wgpu picks its adapter
    /// itself, so the layer is switched off there with its documented `NODEVICE_SELECT=1`; a
    /// value the user set is kept.
    pub fn quiet_vulkan_device_select() {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none()
            && std::env::var_os("NODEVICE_SELECT").is_none()
        {
            // SAFETY: the first statement of `main`, before any thread of ours or of a library
            // exists, so nothing can read the environment while it changes.
            unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
        }
    }
}
