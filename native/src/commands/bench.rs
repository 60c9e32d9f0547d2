//! `consistentid bench`: times a ConsistentID folder on this machine (load, each phase of a cold
//! and a warm portrait, each denoising step, the big networks on their own) and its memory, as
//! one JSON object on stdout. `bench/torch_pipeline.py` measures the same shapes with PyTorch
//! and `scripts/bench.sh` prints the two side by side.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use clap::Args;
use consistentid_core::face::{ChannelOrder, FaceChoice};
use consistentid_core::pipeline::{
    FaceJob, GeneratedImage, GenerationRequest, IdentitySource, Phase, Sink,
};
use consistentid_core::scheduler::SchedulerKind;
use serde_json::{Value, json};

use crate::device::{DeviceChoice, DtypeChoice, select};
use crate::io::image::read_image;
use crate::io::tensors::file_name;
use crate::models::load_engine;

/// `bench` options: the shapes of the portrait to time.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// ConsistentID model folder (e.g. made by `bench/make_fullsize.py`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Reference face photo.
    #[arg(long, value_name = "IMAGE")]
    pub face: PathBuf,
    #[arg(long, default_value = "a woman as an astronaut, oil painting")]
    pub prompt: String,
    #[arg(long, default_value_t = 512)]
    pub width: usize,
    #[arg(long, default_value_t = 512)]
    pub height: usize,
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Steps up to this one use the text-only prompt.
    #[arg(long, default_value_t = 1)]
    pub merge_step: usize,
    /// Portraits to time after the cold one.
    #[arg(long, default_value_t = 1)]
    pub warm: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Records when each phase and step ends; syncs the device first so GPU times are real.
struct TimingSink {
    device: Device,
    started: Instant,
    phase_started: Instant,
    phases: Vec<(Phase, f64)>,
    step_started: Instant,
    steps: Vec<f64>,
    warnings: Vec<String>,
}

impl TimingSink {
    fn new(device: &Device) -> Self {
        let now = Instant::now();
        Self {
            device: device.clone(),
            started: now,
            phase_started: now,
            phases: Vec::new(),
            step_started: now,
            steps: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn report(&self) -> Value {
        let mut phases = serde_json::Map::new();
        for (phase, secs) in &self.phases {
            let key = format!("{phase:?}").to_lowercase();
            let total = phases.get(&key).and_then(Value::as_f64).unwrap_or(0.0) + secs;
            phases.insert(key, json!(total));
        }
        // The likeness score is ours alone (the official pipeline has no such step): it is
        // reported as a phase and kept out of the portrait's total, so totals compare.
        let score = phases.get("score").and_then(Value::as_f64).unwrap_or(0.0);
        json!({
            "total_s": self.started.elapsed().as_secs_f64() - score,
            "phases_s": phases,
            "steps_s": self.steps,
            "warnings": self.warnings,
        })
    }
}

impl Sink for TimingSink {
    fn phase_started(&mut self, _phase: Phase, _image: Option<usize>) {
        sync(&self.device);
        self.phase_started = Instant::now();
        self.step_started = self.phase_started;
    }
    fn phase_finished(&mut self, phase: Phase, _image: Option<usize>) {
        sync(&self.device);
        self.phases
            .push((phase, self.phase_started.elapsed().as_secs_f64()));
    }
    fn step(&mut self, _image: usize, _step: usize, _total: usize) {
        sync(&self.device);
        self.steps.push(self.step_started.elapsed().as_secs_f64());
        self.step_started = Instant::now();
    }
    fn warning(&mut self, text: &str) {
        self.warnings.push(text.to_string());
    }
    fn image(&mut self, _image: &GeneratedImage) -> consistentid_core::Result<()> {
        Ok(())
    }
}

fn sync(device: &Device) {
    // A failed sync only makes a figure wrong, which the next one shows.
    let _ = device.sync();
}

/// Runs the benchmark and prints its JSON.
pub fn run(args: &BenchArgs, choice: DeviceChoice, dtype: DtypeChoice) -> Result<()> {
    let face = read_image(&args.face)?;
    let (device, backend) = select(choice)?;
    let dtype = dtype.resolve(backend);
    let rss_before = memory_mb("VmRSS");

    let started = Instant::now();
    let engine = load_engine(&args.model, ChannelOrder::Official, dtype, &device)?;
    sync(&device);
    let load_s = started.elapsed().as_secs_f64();
    let rss_after_load = memory_mb("VmRSS");
    eprintln!("loaded in {load_s:.1}s");

    let request = GenerationRequest {
        num_inference_steps: args.steps,
        start_merge_step: Some(args.merge_step),
        seed: Some(args.seed),
        width: args.width,
        height: args.height,
        scheduler: SchedulerKind::Euler,
        ..GenerationRequest::consistentid(&args.prompt)
    };
    let job = FaceJob {
        request,
        face,
        face_name: file_name(&args.face),
        // Random-weight detectors may find no face; then the zero embedding is used and the
        // analysis phase still times the detector.
        identity: IdentitySource::Detect {
            choice: FaceChoice::BestScore,
            allow_no_face: true,
        },
        face_parsing: None,
        photo: None,
    };
    engine.check(&job)?;
    let mut portraits = Vec::new();
    for k in 0..=args.warm {
        let mut sink = TimingSink::new(&device);
        engine.run(&job, &mut sink)?;
        let report = sink.report();
        eprintln!(
            "portrait {} ({}): {:.1}s",
            k + 1,
            if k == 0 { "cold" } else { "warm" },
            report["total_s"].as_f64().unwrap_or_default()
        );
        portraits.push(report);
    }

    let components = time_components(&engine, &device, args)?;
    let report = json!({
        "implementation": "consistentid (burn)",
        "backend": backend,
        "dtype": format!("{dtype:?}").to_lowercase(),
        "machine": machine(),
        "model": args.model.display().to_string(),
        "settings": {
            "width": args.width, "height": args.height, "steps": args.steps,
            "merge_step": args.merge_step, "scheduler": "euler", "dtype": "f32",
        },
        "load_s": load_s,
        "rss_before_load_mb": rss_before,
        "rss_after_load_mb": rss_after_load,
        "portraits": portraits,
        "components_s": components,
        "peak_rss_mb": memory_mb("VmHWM"),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The big networks on their own, warm, each once: what the phases are made of.
fn time_components(
    engine: &consistentid_core::pipeline::Engine,
    device: &Device,
    args: &BenchArgs,
) -> Result<Value> {
    let pipe = &engine.pipe;
    let timed = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        sync(device);
        let t = Instant::now();
        f()?;
        sync(device);
        Ok(t.elapsed().as_secs_f64())
    };
    let text_pair_s = timed(&mut || {
        pipe.sd
            .encode_prompt(&args.prompt, Some("blurry"))
            .map(|_| ())
            .map_err(Into::into)
    })?;
    let s = pipe.image_encoder.image_size();
    let clip = |n: usize| {
        timed(&mut || {
            let x: Tensor<4> = Tensor::zeros([n, 3, s, s], device);
            pipe.image_encoder.forward(x)?;
            Ok(())
        })
    };
    let clip_1_s = clip(1)?;
    let clip_5_s = clip(5)?;
    let [_, c, h, w] = pipe.sd.latent_shape(args.width, args.height)?;
    let vae_decode_s = timed(&mut || {
        let latents: Tensor<4> = Tensor::zeros([1, c, h, w], device);
        let image = pipe.sd.decode(latents);
        image
            .into_data()
            .try_to_vec::<f32>()
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e:?}"))
    })?;
    let bisenet_s = timed(&mut || {
        let size = consistentid_core::bisenet::preprocess::SIZE;
        let x = Tensor::from_data(
            TensorData::new(vec![0.0f32; 3 * size * size], [1, 3, size, size]),
            device,
        );
        let out = pipe.bisenet.forward(x);
        drop(out);
        Ok(())
    })
    .context("BiSeNet")?;
    Ok(json!({
        "text_encoder_pair": text_pair_s,
        "clip_vision_batch1": clip_1_s,
        "clip_vision_batch5": clip_5_s,
        "bisenet_512": bisenet_s,
        "vae_decode": vae_decode_s,
    }))
}

/// A line of `/proc/self/status` in MB (Linux; `null` elsewhere).
fn memory_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    });
    json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu": cpu,
        "threads": std::thread::available_parallelism().map(|n| n.get()).ok(),
    })
}
