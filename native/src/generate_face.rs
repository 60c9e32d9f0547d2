//! `consistentid generate --face`: ConsistentID portraits of the person in a reference photo.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use consistentid_core::consistentid::styles;
use consistentid_core::pipeline::DenoiseLoop;
use consistentid_core::rng::NoiseRng;

use crate::device::{DeviceChoice, select};
use crate::generate::{GenerateArgs, random_seed, sampler_name, write_png};
use crate::stage_consistentid::{identity, load_pipeline};
use crate::stage_face::read_image;

fn timed<T>(label: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    let out = f()?;
    eprintln!("  {label}: {:.2}s", t.elapsed().as_secs_f64());
    Ok(out)
}

/// Runs `generate --face`: models loaded once, then every image from its own seed.
pub fn run(args: &GenerateArgs, device: DeviceChoice) -> Result<()> {
    let face_path = args.face.as_ref().context("--face is required")?;
    if !args.model.is_dir() {
        bail!(
            "--face needs a model folder (SD1.5 diffusers layout + image_encoder/, ConsistentID-v1.bin, face_parsing.pth)"
        );
    }
    let style_name = args.style.as_deref().unwrap_or("consistentid");
    let style = styles::find(style_name).with_context(|| {
        format!(
            "unknown style `{style_name}` (styles: {})",
            styles::names().join(", ")
        )
    })?;
    let (prompt, negative) = style.apply(&args.prompt, args.negative_prompt.as_deref());
    let guidance = args.guidance.unwrap_or(5.0);
    let (width, height) = (args.width.unwrap_or(512), args.height.unwrap_or(768));
    let face = read_image(face_path)?;
    let (device, backend) = select(device)?;

    let started = Instant::now();
    let pipe = load_pipeline(&args.model, &device)?;
    let shape = pipe.sd.latent_shape(width, height)?;
    eprintln!(
        "loaded {} on {backend} in {:.1}s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let id = timed("detect + ArcFace", || {
        identity(&args.model, &face, face_path, &args.identity, &device)
    })?;
    let regions = timed("parse", || Ok(pipe.parse_regions(&face)))?;
    let prepared = timed("encode", || {
        Ok(pipe.prepare_with_regions(&face, &regions, id, &prompt, Some(negative.as_str()))?)
    })?;
    eprintln!(
        "  regions: {}; prompt: {}",
        prepared.regions.join(", "),
        prepared.prompt.prompt_face
    );

    let seed = args.seed.unwrap_or_else(random_seed);
    println!("seed: {seed}");
    let spec = DenoiseLoop {
        scheduler: args.scheduler,
        steps: args.steps,
        guidance_scale: guidance,
    };
    let terminal = std::io::stderr().is_terminal();
    for k in 0..args.num_images {
        let image_seed = seed.wrapping_add(k as u64);
        let mut rng = NoiseRng::new(image_seed);
        let init = rng.tensor(shape, &device);
        let latents = timed("denoise", || {
            let latents = pipe.sd.denoise_with(
                &spec,
                &|i| prepared.conditioning.at_step(i, args.merge_step),
                init,
                &mut rng,
                &mut |i, n| {
                    if terminal {
                        eprint!("\r  image {}/{}: step {i}/{n}", k + 1, args.num_images);
                    }
                },
            )?;
            if terminal {
                eprintln!();
            }
            Ok(latents)
        })?;
        let image = timed("decode", || Ok(pipe.sd.decode(latents)))?;
        let parameters = format!(
            "{prompt}\nNegative prompt: {negative}\nSteps: {}, Sampler: {}, CFG scale: {guidance}, Seed: {image_seed}, Size: {width}x{height}, Model: ConsistentID, Face: {}, Merge step: {}, Style: {}",
            args.steps,
            sampler_name(args.scheduler),
            face_path.display(),
            args.merge_step,
            style.name
        );
        let path = args.out.join(format!("{image_seed}-{k}.png"));
        write_png(&path, image, &parameters)?;
        println!("{}", path.display());
    }
    Ok(())
}
