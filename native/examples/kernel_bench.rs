//! Times core's GroupNorm (+ SiLU) and 3×3 convolution against burn's on the CPU backend at the
//! shapes of the SD1.5 VAE decoder (512² images) and UNet (batch 2 with CFG, 64² latents): the
//! figures behind the host kernels in bench/RESULTS.md. (The UNet's convolutions are below the
//! host path's size threshold and take burn's.) Build it in release:
//!
//!     cargo run --release -p consistentid-native --example kernel_bench [RUNS]
//!
//! Prints one JSON object per shape (median of RUNS timed runs after one warm-up, default 5).

use std::time::Instant;

use burn::nn::conv::Conv2dConfig;
use burn::nn::{GroupNormConfig, PaddingConfig2d};
use burn::tensor::{Device, Distribution, Tensor};
use consistentid_core::kernels::{conv2d, group_norm, group_norm_reference};

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let runs = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5usize)
        .max(1);
    let device = Device::flex();
    let shapes: [(&str, [usize; 4]); 9] = [
        ("vae 512@64²", [1, 512, 64, 64]),
        ("vae 512@128²", [1, 512, 128, 128]),
        ("vae 512@256²", [1, 512, 256, 256]),
        ("vae 256@256²", [1, 256, 256, 256]),
        ("vae 256@512²", [1, 256, 512, 512]),
        ("vae 128@512²", [1, 128, 512, 512]),
        ("unet 320@64²", [2, 320, 64, 64]),
        ("unet 640@32²", [2, 640, 32, 32]),
        ("unet 1280@16²", [2, 1280, 16, 16]),
    ];
    for (name, shape) in shapes {
        let norm = GroupNormConfig::new(32, shape[1])
            .with_epsilon(1e-6)
            .init(&device);
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.5, 1.0), &device);
        // Each call gets its own copy, so the host path is measured as the models call it (a
        // tensor nobody else holds, no copy out of the backend).
        let burn = median_ms(runs, || {
            let y = group_norm_reference(&norm, x.clone().add_scalar(0.0), true);
            let _ = device.sync();
            drop(y);
        });
        let ours = median_ms(runs, || {
            let y = group_norm(&norm, x.clone().add_scalar(0.0), true);
            let _ = device.sync();
            drop(y);
        });
        let copy = median_ms(runs, || {
            let y = x.clone().add_scalar(0.0);
            let _ = device.sync();
            drop(y);
        });
        println!(
            "{{\"op\": \"group_norm+silu\", \"shape\": \"{name}\", \"burn_ms\": {:.1}, \"ours_ms\": {:.1}, \"copy_ms\": {:.1}}}",
            burn - copy,
            ours - copy,
            copy
        );
    }
    let convs: [(&str, [usize; 4], usize); 11] = [
        ("vae 512→512@64²", [1, 512, 64, 64], 512),
        ("vae 512→512@128²", [1, 512, 128, 128], 512),
        ("vae 512→512@256²", [1, 512, 256, 256], 512),
        ("vae 256→256@256²", [1, 256, 256, 256], 256),
        ("vae 256→128@512²", [1, 256, 512, 512], 128),
        ("vae 128→128@512²", [1, 128, 512, 512], 128),
        ("unet 640→320@64²", [2, 640, 64, 64], 320),
        ("unet 640→640@64²", [2, 640, 64, 64], 640),
        ("unet 320→320@64²", [2, 320, 64, 64], 320),
        ("unet 640→640@32²", [2, 640, 32, 32], 640),
        ("unet 1280→1280@16²", [2, 1280, 16, 16], 1280),
    ];
    for (name, shape, out) in convs {
        let conv = Conv2dConfig::new([shape[1], out], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let burn = median_ms(runs, || {
            let y = conv.forward(x.clone().add_scalar(0.0));
            let _ = device.sync();
            drop(y);
        });
        let ours = median_ms(runs, || {
            let y = conv2d(&conv, x.clone().add_scalar(0.0));
            let _ = device.sync();
            drop(y);
        });
        println!(
            "{{\"op\": \"conv3x3\", \"shape\": \"{name}\", \"burn_ms\": {burn:.1}, \"ours_ms\": {ours:.1}}}"
        );
    }
}
