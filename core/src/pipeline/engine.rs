//! The generation engine: one entry point for the CLI, the host and the tests. It holds the
//! models of a ConsistentID folder (loaded once) and runs a validated request while reporting
//! to a [`Sink`]. Tested through `native/tests/cli.rs` (images equal the stage-by-stage
//! parity path) and `native/tests/serve_*.rs` (the host's images equal the CLI's).

use burn::tensor::{Tensor, TensorData};

use super::consistentid::{ConsistentIdPipeline, Prepared};
use super::denoise::Conditions;
use super::events::{Candidate, GeneratedImage, Phase, Sink, latent_preview, to_rgb8};
use super::photo_job::{PhotoJob, photo_latents};
use super::request::GenerationRequest;
use super::txt2img::{DenoiseLoop, StableDiffusion, StepObserver};
use crate::bisenet::preprocess::SIZE as PARSING_SIZE;
use crate::bisenet::regions::Mask;
use crate::consistentid::styles;
use crate::face::analysis::{FaceAnalysis, Identity};
use crate::face::likeness::{Likeness, best_first};
use crate::face::{ChannelOrder, FaceChoice};
use crate::image::RgbImage;
use crate::rng::NoiseRng;
use crate::tensor_io::check_finite;
use crate::weights::WeightSource;
use crate::{Error, Result};

/// Length of an ArcFace identity embedding (w600k_r50's; the checkpoint's `id_dim` decides).
pub const ID_DIM: usize = 512;

/// Where the identity comes from.
#[derive(Clone, Debug)]
pub enum IdentitySource {
    /// A stored embedding (`[512]`, finite), replacing detection.
    Embedding(Vec<f32>),
    /// SCRFD + ArcFace on the face photo.
    Detect {
        choice: FaceChoice,
        allow_no_face: bool,
    },
}

/// One ConsistentID job: a validated request with its seed resolved, and the face.
#[derive(Clone, Debug)]
pub struct FaceJob {
    pub request: GenerationRequest,
    pub face: RgbImage,
    /// How the face is named in messages and PNG metadata (a file name, never a path).
    pub face_name: String,
    pub identity: IdentitySource,
    /// A `512 × 512` BiSeNet label map of `face` computed by the client (replaces parsing).
    pub face_parsing: Option<Vec<u8>>,
    /// A photo to inpaint or transform instead of starting from noise.
    pub photo: Option<PhotoJob>,
}

/// The loaded models of a ConsistentID folder.
pub struct Engine {
    pub pipe: ConsistentIdPipeline,
    /// buffalo_l's networks, when the folder has them.
    pub faces: Option<FaceAnalysis>,
    /// At most this many images of a job share one UNet batch (1 on load: one at a time).
    pub max_batch: usize,
}

impl Engine {
    /// Loads every model of the folder once (the diffusion networks in `dtype`).
    pub fn load(
        source: &dyn WeightSource,
        order: ChannelOrder,
        dtype: burn::tensor::DType,
        device: &burn::tensor::Device,
    ) -> Result<Self> {
        let (pipe, faces) = crate::parallel::join(
            || ConsistentIdPipeline::load(source, dtype, device),
            || FaceAnalysis::load(source, order, device),
        );
        Ok(Self {
            pipe: pipe?,
            faces: faces?,
            max_batch: 1,
        })
    }

    /// Everything about a job that can be checked without computing: the size, the identity
    /// source, the client's label map.
    pub fn check(&self, job: &FaceJob) -> Result<()> {
        let r = &job.request;
        self.pipe.sd.latent_shape(r.width, r.height)?;
        if r.seed.is_none() || r.start_merge_step.is_none() {
            return Err(Error::InvalidRequest(
                "a face job needs a resolved seed and a merge step".into(),
            ));
        }
        match &job.identity {
            IdentitySource::Embedding(values) => {
                let dim = self.pipe.modules.image_proj.id_dim();
                if values.len() != dim {
                    return Err(Error::Input {
                        name: "id_embedding".into(),
                        reason: format!("expected {dim} numbers, got {}", values.len()),
                    });
                }
                check_finite("id_embedding", values)?;
            }
            IdentitySource::Detect { .. } if self.faces.is_none() => {
                return Err(Error::InvalidRequest(format!(
                    "no identity embedding given and no insightface buffalo_l files ({}, {}) in the model folder or its buffalo_l/",
                    crate::face::analysis::DETECTOR,
                    crate::face::analysis::RECOGNISER
                )));
            }
            IdentitySource::Detect { .. } => {}
        }
        if let Some(photo) = &job.photo {
            photo.check(&self.pipe.sd, r.num_inference_steps)?;
        }
        if let Some(labels) = &job.face_parsing {
            ConsistentIdPipeline::regions_from_labels(labels)?;
            if job.face.width == 0 || job.face.height == 0 {
                return Err(Error::Image {
                    name: job.face_name.clone(),
                    reason: "empty image".into(),
                });
            }
        }
        Ok(())
    }

    /// Runs a job: analysis, parsing, encoding, then each image from its own seed.
    pub fn run(&self, job: &FaceJob, sink: &mut dyn Sink) -> Result<Vec<GeneratedImage>> {
        self.check(job)?;
        let r = &job.request;
        let merge_step = r.start_merge_step.unwrap_or_default();
        let style = match r.style.as_deref() {
            Some(name) => styles::find(name)
                .ok_or_else(|| Error::InvalidRequest(format!("unknown style `{name}`")))?,
            None => styles::DEFAULT,
        };
        let (prompt, negative) = style.apply(&r.prompt, r.negative_prompt.as_deref());
        warn_truncated(&self.pipe.sd, &prompt, "prompt", sink);
        warn_truncated(&self.pipe.sd, &negative, "negative prompt", sink);

        let id = phase(sink, Phase::Analyse, None, |sink| self.identity(job, sink))?;
        let reference = id.clone();
        let mut regions = phase(sink, Phase::Parse, None, |_| self.regions(job))?;
        if let Some(n) = r.ablation.max_regions {
            regions.truncate(n);
        }
        // Without the facial caption no facial token is marked, so no region is fused.
        let caption = if r.ablation.no_facial_caption {
            regions.clear();
            ""
        } else if job.photo.is_some() {
            // The official inpainting pipeline's own template.
            crate::consistentid::prompt::PHOTO_FACIAL_CAPTION
        } else {
            crate::consistentid::prompt::FACIAL_CAPTION
        };
        let prepared: Prepared = phase(sink, Phase::Encode, None, |_| {
            let dim = self.pipe.modules.image_proj.id_dim();
            if id.len() != dim {
                return Err(Error::InvalidRequest(format!(
                    "the face recognition model gives {} numbers; the ConsistentID checkpoint expects {dim}",
                    id.len()
                )));
            }
            let id = Tensor::from_data(TensorData::new(id, [1, dim]), &self.pipe.sd.device);
            self.pipe.prepare_with_regions(
                &job.face,
                &regions,
                id,
                &prompt,
                Some(&negative),
                caption,
            )
        })?;
        sink.info(&format!(
            "regions: {}; prompt: {}",
            prepared.regions.join(", "),
            prepared.prompt.prompt_face
        ));
        let mut prepared = prepared;
        if r.ablation.no_id_tokens {
            let n = self.pipe.modules.image_proj.num_tokens;
            prepared.conditioning = prepared.conditioning.without_id_tokens(n);
        }
        prepared.conditioning.check()?;
        let ablation = r
            .ablation
            .label()
            .map(|a| format!(", Ablation: {a}"))
            .unwrap_or_default();
        let photo_text = job
            .photo
            .as_ref()
            .map(PhotoJob::parameters)
            .unwrap_or_default();
        let seed = r.seed.unwrap_or_default();
        let photo = phase(sink, Phase::Encode, None, |_| {
            photo_latents(&self.pipe.sd, job.photo.as_ref(), r, seed)
        })?;
        let device = self.pipe.sd.device.clone();
        let controls = job
            .photo
            .as_ref()
            .map(|p| p.controls(r.width, r.height, &device))
            .unwrap_or_default();
        let parameters = |seed: u64| {
            format!(
                "{prompt}\nNegative prompt: {negative}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {seed}, Size: {}x{}, Model: ConsistentID, Face: {}, Merge step: {merge_step}, Style: {}{ablation}{photo_text}",
                r.num_inference_steps,
                r.scheduler.sampler_name(),
                r.guidance_scale,
                r.width,
                r.height,
                job.face_name,
                style.name
            )
        };
        let conditioning = &prepared.conditioning;
        let score = |image: &RgbImage| match &self.faces {
            Some(faces) => faces.likeness(&reference, image),
            None => Ok(Likeness::unmeasured(
                "no face recognition model (buffalo_l) in the model folder",
            )),
        };
        render(
            &self.pipe.sd,
            r,
            self.max_batch,
            Conditions {
                context_at: &|i| conditioning.at_step(i, merge_step),
                photo: photo.as_ref(),
                controls: &controls,
            },
            &parameters,
            Some(&score),
            sink,
        )
    }

    fn identity(&self, job: &FaceJob, sink: &mut dyn Sink) -> Result<Vec<f32>> {
        match &job.identity {
            IdentitySource::Embedding(values) => Ok(values.clone()),
            IdentitySource::Detect {
                choice,
                allow_no_face,
            } => {
                let faces = self.faces.as_ref().ok_or_else(|| {
                    Error::InvalidRequest("no face analysis models loaded".into())
                })?;
                let Identity {
                    embedding,
                    warnings,
                    ..
                } = faces.identify(&job.face, &job.face_name, *choice, *allow_no_face)?;
                for w in warnings {
                    sink.warning(&w);
                }
                Ok(embedding)
            }
        }
    }

    fn regions(&self, job: &FaceJob) -> Result<Vec<(String, Mask)>> {
        match &job.face_parsing {
            Some(labels) => {
                // The client parsed the face at BiSeNet's input size; the masks are in
                // those coordinates, as the official pipeline's.
                debug_assert_eq!(labels.len(), PARSING_SIZE * PARSING_SIZE);
                ConsistentIdPipeline::regions_from_labels(labels)
            }
            None => self.pipe.parse_regions(&job.face),
        }
    }
}

/// Plain text-to-image (or, with `photo`, inpainting and image-to-image) with an SD1.x model
/// through the same per-image loop; `model_name` goes into the PNG parameters.
pub fn run_txt2img(
    sd: &StableDiffusion,
    request: &GenerationRequest,
    model_name: &str,
    max_batch: usize,
    photo: Option<&PhotoJob>,
    sink: &mut dyn Sink,
) -> Result<Vec<GeneratedImage>> {
    if let Some(p) = photo {
        p.check(sd, request.num_inference_steps)?;
    }
    warn_truncated(sd, &request.prompt, "prompt", sink);
    if let Some(n) = &request.negative_prompt {
        warn_truncated(sd, n, "negative prompt", sink);
    }
    let seed = request.seed.unwrap_or_default();
    let (context, latents) = phase(sink, Phase::Encode, None, |_| {
        let context = sd.encode_prompt(&request.prompt, request.negative_prompt.as_deref())?;
        Ok((context, photo_latents(sd, photo, request, seed)?))
    })?;
    let photo_text = photo.map(PhotoJob::parameters).unwrap_or_default();
    let controls = photo
        .map(|p| p.controls(request.width, request.height, &sd.device))
        .unwrap_or_default();
    let parameters = |seed: u64| {
        format!(
            "{}\nNegative prompt: {}\nSteps: {}, Sampler: {}, CFG scale: {}, Seed: {seed}, Size: {}x{}, Model: {model_name}{photo_text}",
            request.prompt,
            request.negative_prompt.as_deref().unwrap_or(""),
            request.num_inference_steps,
            request.scheduler.sampler_name(),
            request.guidance_scale,
            request.width,
            request.height,
        )
    };
    render(
        sd,
        request,
        max_batch,
        Conditions {
            context_at: &|_| context.clone(),
            photo: latents.as_ref(),
            controls: &controls,
        },
        &parameters,
        None,
        sink,
    )
}

/// Scores a finished image against the reference face.
type Scorer<'a> = &'a dyn Fn(&RgbImage) -> Result<Likeness>;

/// The image loop: image k starts from the noise of seed + k (and `photo`, when given), is
/// denoised with
/// `context_at(step)` (up to `max_batch` images share one UNet batch; each comes out as it
/// would alone), decoded, scored by `score` (when there is a reference face) and handed to the
/// sink; with best-of-N, all N are made and the most alike handed over, best first.
fn render(
    sd: &StableDiffusion,
    r: &GenerationRequest,
    max_batch: usize,
    conditions: Conditions<'_>,
    parameters: &dyn Fn(u64) -> String,
    score: Option<Scorer<'_>>,
    sink: &mut dyn Sink,
) -> Result<Vec<GeneratedImage>> {
    let seed = r
        .seed
        .ok_or_else(|| Error::InvalidRequest("the seed must be resolved before running".into()))?;
    let shape = sd.latent_shape(r.width, r.height)?;
    let spec = DenoiseLoop {
        scheduler: r.scheduler,
        steps: r.num_inference_steps,
        guidance_scale: r.guidance_scale,
    };
    let made = r.images_made();
    let best_of = made > r.num_outputs;
    let mut images = Vec::with_capacity(made);
    let indices: Vec<usize> = (0..made).collect();
    for batch in indices.chunks(max_batch.max(1)) {
        let seeds: Vec<u64> = batch.iter().map(|&k| seed.wrapping_add(k as u64)).collect();
        let mut rngs: Vec<NoiseRng> = seeds.iter().map(|&s| NoiseRng::new(s)).collect();
        let init = Tensor::cat(
            rngs.iter_mut()
                .map(|rng| rng.tensor(shape, &sd.device))
                .collect(),
            0,
        );
        // A batch is one denoising phase, named by its first image; steps go to every image.
        let latents = phase(sink, Phase::Denoise, Some(batch[0]), |sink| {
            let mut observer = Observer {
                sink,
                images: batch,
            };
            sd.denoise_batch(&spec, &conditions, init, &mut rngs, &mut observer)
        })?;
        let [_, c, h, w] = latents.dims();
        for (row, (&index, &image_seed)) in batch.iter().zip(&seeds).enumerate() {
            let one = latents.clone().slice([row..row + 1, 0..c, 0..h, 0..w]);
            let image = phase(sink, Phase::Decode, Some(index), |_| {
                to_rgb8(sd.decode(one))
            })?;
            let likeness = match score {
                Some(f) => Some(phase(sink, Phase::Score, Some(index), |_| f(&image))?),
                None => None,
            };
            let mut text = parameters(image_seed);
            if let Some(l) = &likeness {
                text = format!("{text}, {}", l.parameter());
            }
            let generated = GeneratedImage {
                index,
                seed: image_seed,
                image,
                parameters: text,
                likeness,
            };
            if !best_of {
                sink.image(&generated)?;
            }
            images.push(generated);
        }
    }
    if best_of {
        images = keep_best(images, r.num_outputs, sink)?;
    }
    Ok(images)
}

/// Best-of-N: tells the sink every candidate's likeness, then hands over the `keep` most
/// alike, best first, numbered by rank.
fn keep_best(
    candidates: Vec<GeneratedImage>,
    keep: usize,
    sink: &mut dyn Sink,
) -> Result<Vec<GeneratedImage>> {
    let scores: Vec<Likeness> = candidates
        .iter()
        .map(|g| g.likeness.clone().unwrap_or_default())
        .collect();
    let order = best_first(&scores);
    let kept = &order[..keep.min(order.len())];
    let listed: Vec<Candidate> = candidates
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(i, (g, likeness))| Candidate {
            seed: g.seed,
            face_similarity: likeness.face_similarity,
            face_similarity_reason: likeness.face_similarity_reason,
            kept: kept.contains(&i),
        })
        .collect();
    sink.candidates(&listed);
    let n = candidates.len();
    let mut slots: Vec<Option<GeneratedImage>> = candidates.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(kept.len());
    for (rank, &i) in kept.iter().enumerate() {
        let Some(mut g) = slots[i].take() else {
            continue;
        };
        g.index = rank;
        g.parameters = format!("{}, Best of: {n}", g.parameters);
        sink.image(&g)?;
        out.push(g);
    }
    Ok(out)
}

/// Runs `f` between the sink's phase start and end.
fn phase<T>(
    sink: &mut dyn Sink,
    phase: Phase,
    image: Option<usize>,
    f: impl FnOnce(&mut dyn Sink) -> Result<T>,
) -> Result<T> {
    sink.phase_started(phase, image);
    let out = f(sink)?;
    sink.phase_finished(phase, image);
    Ok(out)
}

/// Adapts a [`Sink`] to the denoising loop of a batch of images.
struct Observer<'a> {
    sink: &'a mut dyn Sink,
    /// The images of the batch, in batch order.
    images: &'a [usize],
}

impl StepObserver for Observer<'_> {
    fn after_step(&mut self, step: usize, total: usize) -> bool {
        for &k in self.images {
            self.sink.step(k, step, total);
        }
        !self.sink.cancelled()
    }

    fn wants_x0(&mut self, step: usize, total: usize) -> bool {
        self.sink.wants_preview(self.images[0], step, total)
    }

    fn x0(&mut self, step: usize, _total: usize, x0: Tensor<4>) -> Result<()> {
        let [_, c, h, w] = x0.dims();
        for (row, &k) in self.images.iter().enumerate() {
            let one = x0.clone().slice([row..row + 1, 0..c, 0..h, 0..w]);
            self.sink.preview(k, step, latent_preview(one)?);
        }
        Ok(())
    }
}

/// Warns with the words CLIP will not see, as diffusers does.
fn warn_truncated(sd: &StableDiffusion, text: &str, what: &str, sink: &mut dyn Sink) {
    if let Some(cut) = sd.tokenizer.truncated_text(text) {
        sink.warning(&format!(
            "the {what} is longer than CLIP's {} tokens; this part is cut: \"{cut}\"",
            sd.tokenizer.model_max_length()
        ));
    }
}
