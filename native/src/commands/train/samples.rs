//! Sample portraits during a run (`--sample-every N`): the same face, prompt and seeds drawn
//! with the run's current weights at step 0, every N steps and at the end, into
//! `RUN/samples/step-N/seed-S.png` (with their parameters), so a person sees what training does.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::{DType, Device};
use consistentid_core::face::ChannelOrder;
use consistentid_core::face::choose::FaceChoice;
use consistentid_core::image::RgbImage;
use consistentid_core::pipeline::engine::{Engine, FaceJob, IdentitySource};
use consistentid_core::pipeline::events::{GeneratedImage, Sink};
use consistentid_core::pipeline::request::GenerationRequest;
use consistentid_core::weights::WeightSource;

use crate::io::output::write_atomic;
use crate::io::png::encode_rgb;

/// What the samples show.
pub struct SampleSettings {
    pub face: RgbImage,
    pub face_name: String,
    pub prompt: String,
    pub seeds: usize,
    pub steps: usize,
    pub size: usize,
    /// The identity used when the model folder has no buffalo_l to find the face's (the
    /// dataset's embedding of the photo, or zeros).
    pub identity: Option<Vec<f32>>,
}

/// The inference engine kept beside the trainer, given the run's weights before each draw.
pub struct Sampler {
    engine: Engine,
    job: FaceJob,
    dir: PathBuf,
}

/// Writes each image as it comes.
struct Files<'a> {
    dir: &'a Path,
    written: Vec<PathBuf>,
}

impl Sink for Files<'_> {
    fn image(&mut self, image: &GeneratedImage) -> consistentid_core::Result<()> {
        let path = self.dir.join(format!("seed-{}.png", image.seed));
        encode_rgb(
            &image.image.data,
            image.image.width as u32,
            image.image.height as u32,
            &image.parameters,
        )
        .and_then(|png| write_atomic(&path, &png))
        .map_err(|e| consistentid_core::Error::InvalidRequest(format!("{e:#}")))?;
        self.written.push(path);
        Ok(())
    }
}

impl Sampler {
    /// Loads the engine from the run's model folder (on the plain device, f32).
    pub fn new(
        source: &dyn WeightSource,
        device: &Device,
        settings: SampleSettings,
        out: &Path,
    ) -> Result<Self> {
        let engine = Engine::load(source, ChannelOrder::Official, DType::F32, device)?;
        let request = GenerationRequest {
            num_inference_steps: settings.steps,
            // infer.py's 30 of 50.
            start_merge_step: Some(settings.steps * 3 / 5),
            seed: Some(0),
            width: settings.size,
            height: settings.size,
            num_outputs: settings.seeds,
            ..GenerationRequest::consistentid(&settings.prompt)
        };
        let (request, _) = request
            .validate()
            .map_err(|e| anyhow::anyhow!("samples: {e}"))?;
        let job = FaceJob {
            request,
            face: settings.face,
            face_name: settings.face_name,
            identity: match (&engine.faces, settings.identity) {
                (Some(_), _) => IdentitySource::Detect {
                    choice: FaceChoice::BestScore,
                    allow_no_face: true,
                },
                (None, Some(e)) => IdentitySource::Embedding(e),
                (None, None) => {
                    IdentitySource::Embedding(vec![0.0; engine.pipe.modules.image_proj.id_dim()])
                }
            },
            face_parsing: None,
            photo: None,
        };
        engine.check(&job).context("samples")?;
        Ok(Self {
            engine,
            job,
            dir: out.join("samples"),
        })
    }

    /// Draws the samples of `step` with the weights of `checkpoint` (a `ConsistentID-v1.bin`).
    pub fn draw(&mut self, step: u64, checkpoint: &[u8]) -> Result<Vec<PathBuf>> {
        let name = format!("step {step}");
        self.engine
            .pipe
            .use_checkpoint(checkpoint, &name, DType::F32)?;
        let dir = self.dir.join(format!("step-{step}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut files = Files {
            dir: &dir,
            written: Vec::new(),
        };
        self.engine.run(&self.job, &mut files)?;
        Ok(files.written)
    }
}
