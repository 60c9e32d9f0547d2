//! `generate`'s terminal: phases with their times, per-step progress, warnings, and each
//! image written next to its parameters.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use consistentid_core::Error;
use consistentid_core::pipeline::{Candidate, GeneratedImage, Phase, Sink};

use crate::commands::generate::GenerateArgs;
use crate::io::output::{Collision, write_new};
use crate::io::png::encode_rgb;
use crate::progress::StepProgress;

/// Prints phases with their times, per-step progress on a terminal, warnings, and the path
/// of each image it writes.
pub struct TerminalSink<'a> {
    args: &'a GenerateArgs,
    inputs: Vec<&'a Path>,
    /// `generate --face` prints the seed after the encoders, as before the engine.
    pub seed: Option<u64>,
    face: bool,
    started: Option<Instant>,
    image_started: Instant,
    progress: Option<StepProgress>,
    /// The images of the denoising batch under way (first, last).
    batch: (usize, usize),
    /// Why the last image could not be written (the engine only sees that it failed).
    write_error: Option<anyhow::Error>,
}

impl<'a> TerminalSink<'a> {
    /// `image 2/4`, or `images 1–3/4` for a batch.
    fn batch_label(&self) -> String {
        let (first, last) = self.batch;
        let n = self.args.best_of.unwrap_or(0).max(self.args.num_images);
        if first == last {
            format!("image {}/{n}", first + 1)
        } else {
            format!("images {}–{}/{n}", first + 1, last + 1)
        }
    }

    pub fn new(args: &'a GenerateArgs, face: bool) -> Self {
        Self {
            inputs: input_files(args),
            args,
            seed: None,
            face,
            started: None,
            image_started: Instant::now(),
            progress: None,
            batch: (0, 0),
            write_error: None,
        }
    }

    pub fn finish(mut self, result: consistentid_core::Result<Vec<GeneratedImage>>) -> Result<()> {
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.write_error.take().unwrap_or_else(|| e.into())),
        }
    }
}

impl Sink for TerminalSink<'_> {
    fn phase_started(&mut self, phase: Phase, image: Option<usize>) {
        self.started = Some(Instant::now());
        if phase == Phase::Denoise {
            if let Some(seed) = self.seed.take() {
                println!("seed: {seed}");
            }
            let k = image.unwrap_or_default();
            self.image_started = Instant::now();
            self.batch = (k, k);
            self.progress = Some(StepProgress::new(self.batch_label()));
        }
    }

    fn phase_finished(&mut self, phase: Phase, _image: Option<usize>) {
        // Plain txt2img keeps its terse output: one line per image.
        if let (true, Some(t)) = (self.face, self.started.take()) {
            eprintln!("  {}: {:.2}s", phase.label(), t.elapsed().as_secs_f64());
        }
    }

    fn step(&mut self, image: usize, step: usize, total: usize) {
        // Images denoised together report each step in turn: one progress line for the batch.
        if image != self.batch.0 {
            if image > self.batch.1 {
                self.batch.1 = image;
                let label = self.batch_label();
                if let Some(p) = &mut self.progress {
                    p.relabel(label);
                }
            }
            return;
        }
        if let Some(p) = &mut self.progress {
            p.step(step, total);
        }
    }

    fn warning(&mut self, text: &str) {
        eprintln!("warning: {text}");
    }

    fn info(&mut self, text: &str) {
        eprintln!("  {text}");
    }

    fn candidates(&mut self, candidates: &[Candidate]) {
        eprintln!("best of {}:", candidates.len());
        for c in candidates {
            let score = c
                .face_similarity
                .map(|s| format!("{s:.3}"))
                .or_else(|| c.face_similarity_reason.clone())
                .unwrap_or_default();
            eprintln!(
                "  seed {}: face similarity {score}{}",
                c.seed,
                if c.kept { " (kept)" } else { "" }
            );
        }
    }

    fn image(&mut self, image: &GeneratedImage) -> consistentid_core::Result<()> {
        match save_image(self.args, &self.inputs, image) {
            Ok(path) if self.face => {
                println!("{}", path.display());
                if let Some(l) = &image.likeness {
                    eprintln!(
                        "  {} (ArcFace cosine to the reference face)",
                        l.parameter().to_lowercase()
                    );
                }
                Ok(())
            }
            Ok(path) => {
                println!(
                    "{} ({:.1}s)",
                    path.display(),
                    self.image_started.elapsed().as_secs_f64()
                );
                Ok(())
            }
            Err(e) => {
                let message = format!("{e:#}");
                self.write_error = Some(e);
                Err(Error::InvalidRequest(message))
            }
        }
    }
}

/// Writes an image as `{seed}-{k}.png` (or a free variant of the name) in `--out`.
pub fn save_image(
    args: &GenerateArgs,
    inputs: &[&Path],
    image: &GeneratedImage,
) -> Result<PathBuf> {
    let png = encode_rgb(
        &image.image.data,
        image.image.width as u32,
        image.image.height as u32,
        &image.parameters,
    )?;
    let collision = if args.overwrite {
        Collision::Overwrite
    } else {
        Collision::NextFreeName
    };
    write_new(
        &args.out,
        &format!("{}-{}", image.seed, image.index),
        "png",
        &png,
        collision,
        inputs,
    )
}

/// The files a `generate` run reads (never to be written over).
pub fn input_files(args: &GenerateArgs) -> Vec<&Path> {
    [
        Some(args.model.as_path()),
        args.tokenizer.as_deref(),
        args.face.as_deref(),
        args.identity.id_embedding.as_deref(),
        args.photo.image.as_deref(),
        args.photo.mask.as_deref(),
        args.photo.into.as_deref(),
    ]
    .into_iter()
    .flatten()
    .chain(args.photo.control.iter().map(Path::new))
    .collect()
}
