//! `consistentid generate --face`: ConsistentID portraits of the person in a reference photo.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use consistentid_core::consistentid::styles;
use consistentid_core::pipeline::{DenoiseLoop, GenerationRequest};
use consistentid_core::rng::NoiseRng;

use crate::device::{DeviceChoice, select};
use crate::generate::{
    GenerateArgs, file_name, input_files, random_seed, save_image, warn_truncated,
};
use crate::io::image::read_image;
use crate::io::output::ensure_writable_dir;
use crate::progress::StepProgress;
use crate::stage_consistentid::{check_id_embedding, identity, load_pipeline};

fn timed<T>(label: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f()?;
    eprintln!("  {label}: {:.2}s", t.elapsed().as_secs_f64());
    Ok(out)
}

/// Runs `generate --face` on a validated request: inputs and the output folder are checked
/// first, the models loaded once, then every image from its own seed.
pub fn run(args: &GenerateArgs, request: GenerationRequest, device: DeviceChoice) -> Result<()> {
    let face_path = args.face.as_ref().context("--face is required")?;
    if !args.model.is_dir() {
        bail!(
            "--face needs a model folder (SD1.5 diffusers layout + image_encoder/, ConsistentID-v1.bin, face_parsing.pth)"
        );
    }
    let merge_step = request
        .start_merge_step
        .context("a face request has a merge step")?;
    let style = match request.style.as_deref() {
        Some(name) => styles::find(name).context("validated style")?,
        None => styles::DEFAULT,
    };
    let (prompt, negative) = style.apply(&request.prompt, request.negative_prompt.as_deref());
    let face = read_image(face_path)?;
    if let Some(path) = &args.identity.id_embedding {
        check_id_embedding(path)?;
    }
    ensure_writable_dir(&args.out)?;
    let (device, backend) = select(device)?;

    let started = Instant::now();
    let pipe = load_pipeline(&args.model, &device)?;
    let shape = pipe.sd.latent_shape(request.width, request.height)?;
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    warn_truncated(&pipe.tokenizer, &prompt, "prompt");
    warn_truncated(&pipe.tokenizer, &negative, "negative prompt");

    let id = timed("detect + ArcFace", || {
        identity(&args.model, &face, face_path, &args.identity, &device)
    })?;
    let regions = timed("parse", || Ok(pipe.parse_regions(&face)?))?;
    let prepared = timed("encode", || {
        Ok(pipe.prepare_with_regions(&face, &regions, id, &prompt, Some(negative.as_str()))?)
    })?;
    eprintln!(
        "  regions: {}; prompt: {}",
        prepared.regions.join(", "),
        prepared.prompt.prompt_face
    );

    let seed = request.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}");
    let spec = DenoiseLoop {
        scheduler: request.scheduler,
        steps: request.num_inference_steps,
        guidance_scale: request.guidance_scale,
    };
    let inputs = input_files(args);
    for k in 0..request.num_outputs {
        let image_seed = seed.wrapping_add(k as u64);
        let mut rng = NoiseRng::new(image_seed);
        let init = rng.tensor(shape, &device);
        let mut progress = StepProgress::new(format!("image {}/{}", k + 1, request.num_outputs));
        let latents = timed("denoise", || {
            Ok(pipe.sd.denoise_with(
                &spec,
                &|i| prepared.conditioning.at_step(i, merge_step),
                init,
                &mut rng,
                &mut |i, n| progress.step(i, n),
            )?)
        })?;
        let image = timed("decode", || Ok(pipe.sd.decode(latents)))?;
        let parameters = format!(
            "{prompt}\nNegative prompt: {negative}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {image_seed}, Size: {}x{}, Model: ConsistentID, Face: {}, Merge step: {merge_step}, Style: {}",
            request.num_inference_steps,
            request.scheduler.sampler_name(),
            request.guidance_scale,
            request.width,
            request.height,
            file_name(face_path),
            style.name
        );
        let path = save_image(args, &inputs, image_seed, k, image, &parameters)?;
        println!("{}", path.display());
    }
    Ok(())
}
