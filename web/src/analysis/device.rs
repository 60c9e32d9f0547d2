//! Where the browser runs the analysis: burn's wgpu runtime on WebGPU when the browser gives an
//! adapter, else burn's CPU backend (flex) in wasm. Chosen once per page: a wgpu runtime cannot
//! be set up twice.

use burn::tensor::Device;

/// The device and how to name it to the user.
#[derive(Clone)]
pub struct Backend {
    pub device: Device,
    /// e.g. "WebGPU (SwiftShader Device (Subzero))", or "the CPU, in WebAssembly (…)".
    pub name: String,
}

/// Asks for a WebGPU adapter; falls back to the CPU.
pub async fn init() -> Backend {
    match Device::wgpu_options().init_with_setup_async().await {
        Ok((device, setup)) => {
            let info = setup.adapter.get_info();
            // Browsers often keep the adapter's name to themselves.
            let name = match info.name.trim() {
                "" => "WebGPU".to_string(),
                adapter => format!("WebGPU ({adapter})"),
            };
            Backend { device, name }
        }
        Err(e) => {
            leptos::logging::log!("no WebGPU, the analysis runs on the CPU: {e}");
            Backend {
                device: Device::flex(),
                name: "the CPU, in WebAssembly (this browser offers no WebGPU adapter)".into(),
            }
        }
    }
}
