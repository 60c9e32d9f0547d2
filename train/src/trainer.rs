//! A training run: the frozen encoders (VAE, CLIP text, CLIP vision) on the plain device, the
//! trained [`Network`] on its autodiff twin, and one step after another (official recipe,
//! `train.py:213-290`): a batch of samples, the VAE's latent sample, noise, timesteps and the
//! two coins drawn from the run's seed, the forward pass, the losses, AdamW. Each step's draws
//! depend only on the seed and the step number, so a resumed run repeats the uninterrupted one.

use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::clip::text::ClipTextModel;
use consistentid_core::clip::vision::ClipVisionModelWithProjection;
use consistentid_core::image::RgbImage;
use consistentid_core::rng::NoiseRng;
use consistentid_core::scheduler::ForwardProcess;
use consistentid_core::unet::attention::AttentionProbe;
use consistentid_core::vae::AutoencoderKL;

use crate::localization::{FacialTargets, LocVariant, hooked};
use crate::network::Network;
use crate::objective::ForegroundMasks;
use crate::optimizer::LEARNING_RATE;
use crate::precision::{Precision, round, round_module};
use crate::sample::{MAX_FACIALS, Sample, SampleSource, build};
use crate::step::{StepInputs, forward};
use crate::{Result, TrainError};

/// One dataset record, loaded.
pub struct Record {
    /// Names the record in messages (its file).
    pub name: String,
    pub image: RgbImage,
    pub labels: Vec<u8>,
    pub caption: String,
    pub facial_caption: String,
    pub face_id: Option<Vec<f32>>,
}

/// Where records come from (files, for the CLI).
pub trait Dataset {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn get(&self, index: usize) -> Result<Record>;
}

/// The run's settings; the defaults are the official recipe's.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub batch: usize,
    /// Training resolution (512).
    pub size: usize,
    pub seed: u64,
    pub loc_variant: LocVariant,
    /// λ of L_loc (0.01).
    pub loc_weight: f64,
    /// Hooked block groups (5).
    pub loc_layers: usize,
    /// Chance that a step masks the noise loss by the foreground (0.5).
    pub mask_loss_prob: f64,
    /// Chance that a sample's text (and image input) is dropped (0.1).
    pub drop_prob: f64,
    pub learning_rate: f64,
    /// Micro-batches of `batch` samples per optimisation step (1: no accumulation).
    pub accumulate: usize,
    /// Stop at a record that cannot be used instead of naming it and taking the next one.
    pub strict: bool,
    /// Under [`Precision::Bf16`] the encoders' outputs and the noise are bf16 values, as the
    /// official's bf16 tensors (the network's rounding is [`crate::precision::round_network`]
    /// and the optimizer's [`crate::optimizer::for_precision`]).
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch: 8,
            size: 512,
            seed: 0,
            loc_variant: LocVariant::Code,
            loc_weight: 0.01,
            loc_layers: 5,
            mask_loss_prob: 0.5,
            drop_prob: 0.1,
            learning_rate: LEARNING_RATE,
            accumulate: 1,
            strict: false,
            precision: Precision::Bf16,
        }
    }
}

/// The frozen networks, on a plain (not autodiff) device.
pub struct FrozenEncoders {
    pub tokenizer: ClipTokenizer,
    pub text_encoder: ClipTextModel,
    pub image_encoder: ClipVisionModelWithProjection,
    pub vae: AutoencoderKL,
    pub device: Device,
}

impl FrozenEncoders {
    /// Their weights as the official's bf16 copies (`train.py:144-147`).
    pub fn in_bf16(self) -> Self {
        Self {
            text_encoder: round_module(self.text_encoder),
            image_encoder: round_module(self.image_encoder),
            vae: round_module(self.vae),
            ..self
        }
    }
}

/// What one step reports.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step just done, counted from 1.
    pub step: u64,
    pub noise_loss: f32,
    /// Unweighted L_loc (0 when off).
    pub loc_loss: f32,
    pub total: f32,
    /// How many of the step's micro-batches masked the noise loss by the foreground.
    pub masked: usize,
    /// Records found unusable in this step (each named once per run, with the reason); the
    /// next usable record took their place.
    pub skipped: Vec<String>,
}

/// A run in progress.
pub struct Trainer {
    pub config: TrainConfig,
    pub net: Network,
    pub optim: ModuleOptimizer,
    pub encoders: FrozenEncoders,
    process: ForwardProcess,
    probe: AttentionProbe,
    /// Steps done.
    pub step: u64,
    /// Records already named as unusable (for messages only: the choice of records never
    /// depends on it, so a resumed run draws as the uninterrupted one).
    reported: std::collections::BTreeSet<usize>,
}

/// SplitMix-style mixing of the seed with a counter, for independent per-step streams.
fn stream(seed: u64, n: u64, salt: u64) -> NoiseRng {
    NoiseRng::new(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ salt,
    )
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

impl Trainer {
    /// A run starting at `step` (0, or a checkpoint's). `net` lives on an autodiff device and
    /// has its trained parameters chosen.
    pub fn new(
        config: TrainConfig,
        mut net: Network,
        optim: ModuleOptimizer,
        encoders: FrozenEncoders,
        process: ForwardProcess,
        step: u64,
    ) -> Self {
        let probe = AttentionProbe::default();
        let (variant, layers) = (config.loc_variant, config.loc_layers);
        net.unet
            .attach_probe(&probe, |p| hooked(p, variant, layers));
        Self {
            config,
            net,
            optim,
            encoders,
            process,
            probe,
            step,
            reported: Default::default(),
        }
    }

    /// The dataset indices of step `step` (from 0): epochs in a seeded order.
    fn indices(&self, step: u64, len: usize) -> Vec<usize> {
        let b = self.config.batch;
        (0..b)
            .map(|i| {
                let k = step as usize * b + i;
                let (epoch, at) = (k / len, k % len);
                let mut order: Vec<usize> = (0..len).collect();
                let mut rng = stream(self.config.seed, epoch as u64, 0x5eed);
                for j in (1..len).rev() {
                    order.swap(j, rng.below(j + 1));
                }
                order[at]
            })
            .collect()
    }

    /// Runs the frozen encoders on the batch: latents (sampled with `rng`), prompt, image and
    /// region states, moved to the trained network's device.
    fn encode(
        &self,
        samples: &[Sample],
        rng: &mut NoiseRng,
        device: &Device,
    ) -> Result<(Tensor<4>, Tensor<3>, Tensor<3>, Tensor<3>)> {
        let enc = &self.encoders;
        let (b, s) = (samples.len(), self.config.size);
        let plain = &enc.device;
        let images: Vec<f32> = samples.iter().flat_map(|x| x.image.clone()).collect();
        let images = Tensor::<4>::from_data(TensorData::new(images, [b, 3, s, s]), plain);
        let dist = enc.vae.encode(images);
        let noise = rng.tensor(dist.mean.dims(), plain);
        let latents = dist.sample(noise) * enc.vae.scaling_factor;
        let c = enc.image_encoder.image_size();
        let clip: Vec<f32> = samples.iter().flat_map(|x| x.clip_image.clone()).collect();
        let clip = Tensor::<4>::from_data(TensorData::new(clip, [b, 3, c, c]), plain);
        let image_embeds = enc.image_encoder.forward(clip)?.penultimate();
        let regions: Vec<f32> = samples
            .iter()
            .flat_map(|x| x.region_images.iter().flatten().copied())
            .collect();
        let regions =
            Tensor::<4>::from_data(TensorData::new(regions, [b * MAX_FACIALS, 3, c, c]), plain);
        let region_embeds = enc.image_encoder.forward(regions)?.penultimate();
        let ids: Vec<Vec<u32>> = samples
            .iter()
            .map(|x| x.text.tokens.input_ids.clone())
            .collect();
        let prompt = enc.text_encoder.forward_ids(&ids, plain).last_hidden_state;
        let bf16 = self.config.precision == Precision::Bf16;
        let to = |t: Tensor<4>| {
            Tensor::<4>::from_data((if bf16 { round(t) } else { t }).into_data(), device)
        };
        let to3 = |t: Tensor<3>| {
            Tensor::<3>::from_data((if bf16 { round(t) } else { t }).into_data(), device)
        };
        Ok((
            to(latents),
            to3(prompt),
            to3(image_embeds),
            to3(region_embeds),
        ))
    }

    /// One optimisation step: `accumulate` micro-batches, their gradients averaged (as the
    /// official 4 data-parallel processes, each with its own coins), then AdamW.
    pub fn step(&mut self, dataset: &dyn Dataset) -> Result<StepReport> {
        if dataset.is_empty() {
            return Err(TrainError::Sample("the dataset has no records".into()));
        }
        let n = self.config.accumulate.max(1);
        let mut report = StepReport {
            step: self.step + 1,
            noise_loss: 0.0,
            loc_loss: 0.0,
            total: 0.0,
            masked: 0,
            skipped: Vec::new(),
        };
        let mut accumulator = GradientsAccumulator::<Network>::new();
        let mut single = None;
        for m in 0..n {
            let (loss, part) = self.micro(dataset, self.step * n as u64 + m as u64)?;
            let share = 1.0 / n as f32;
            report.noise_loss += part.noise_loss * share;
            report.loc_loss += part.loc_loss * share;
            report.total += part.total * share;
            report.masked += part.masked;
            report.skipped.extend(part.skipped);
            if n == 1 {
                single = Some(GradientsParams::from_grads(loss.backward(), &self.net));
            } else {
                let grads = GradientsParams::from_grads((loss / n as f64).backward(), &self.net);
                accumulator.accumulate(&self.net, grads);
            }
        }
        let grads = single.unwrap_or_else(|| accumulator.grads());
        // burn's clones share their tensors: the stand-in costs nothing.
        let stand_in = self.net.clone();
        let net = std::mem::replace(&mut self.net, stand_in);
        self.net = self.optim.step(self.config.learning_rate, net, grads);
        self.step += 1;
        Ok(report)
    }

    /// The forward pass of micro-batch `micro` (counted over the whole run): its loss on the
    /// autodiff device and its parts. Every draw comes from the seed and `micro`.
    fn micro(&mut self, dataset: &dyn Dataset, micro: u64) -> Result<(Tensor<1>, StepReport)> {
        let cfg = self.config.clone();
        let mut rng = stream(cfg.seed, micro, 0x57e9);
        let device = self.net.unet.conv_in.weight.val().device();
        let id_dim = self.net.image_proj.id_dim();
        let clip_size = self.encoders.image_encoder.image_size();
        let mut samples = Vec::with_capacity(cfg.batch);
        let mut foreground = Vec::new();
        let mut skipped = Vec::new();
        for first in self.indices(micro, dataset.len()) {
            // The coin is drawn before the record is chosen, so skipping draws nothing more.
            let dropped = rng.uniform() < cfg.drop_prob;
            let mut found = None;
            for k in 0..dataset.len() {
                let i = (first + k) % dataset.len();
                let made = dataset.get(i).and_then(|record| {
                    build(
                        &SampleSource {
                            image: &record.image,
                            labels: &record.labels,
                            caption: &record.caption,
                            facial_caption: &record.facial_caption,
                            face_id: record.face_id.as_deref(),
                            dropped,
                        },
                        &self.encoders.tokenizer,
                        cfg.size,
                        clip_size,
                        id_dim,
                    )
                    .map_err(|e| match e {
                        TrainError::Sample(m) => {
                            TrainError::Sample(format!("{}: {m}", record.name))
                        }
                        e => TrainError::Sample(format!("{}: {e}", record.name)),
                    })
                });
                match made {
                    Ok(sample) => {
                        found = Some(sample);
                        break;
                    }
                    Err(e) if cfg.strict => return Err(e),
                    Err(e) => {
                        if self.reported.insert(i) {
                            skipped.push(match e {
                                TrainError::Sample(m) => m,
                                e => e.to_string(),
                            });
                        }
                    }
                }
            }
            let sample = found.ok_or_else(|| {
                TrainError::Sample(format!(
                    "none of the {} records can be used ({})",
                    dataset.len(),
                    skipped.last().map_or("each named before", String::as_str)
                ))
            })?;
            foreground.extend_from_slice(&sample.foreground);
            samples.push(sample);
        }
        let b = samples.len();
        let (latents, prompt_embeds, image_embeds, region_embeds) =
            self.encode(&samples, &mut rng, &device)?;
        let noise = rng.tensor(latents.dims(), &device);
        let noise = match cfg.precision {
            Precision::Bf16 => round(noise),
            Precision::F32 => noise,
        };
        let timesteps: Vec<usize> = (0..b)
            .map(|_| rng.below(self.process.num_train_timesteps()))
            .collect();
        let masked = rng.uniform() < cfg.mask_loss_prob;
        let mut face_id: Vec<f32> = samples.iter().flat_map(|x| x.face_id.clone()).collect();
        if cfg.precision == Precision::Bf16 {
            face_id
                .iter_mut()
                .for_each(|v| *v = half::bf16::from_f32(*v).to_f32());
        }
        let inputs = StepInputs {
            latents,
            noise,
            timesteps,
            prompt_embeds,
            image_embeds,
            region_embeds,
            face_id: Tensor::from_data(TensorData::new(face_id, [b, id_dim]), &device),
            facial_token_mask: samples
                .iter()
                .flat_map(|x| x.text.tokens.facial_token_mask.clone())
                .collect(),
            facial: FacialTargets {
                masks: samples
                    .iter()
                    .flat_map(|x| x.facial_masks.clone())
                    .collect(),
                batch: b,
                slots: MAX_FACIALS,
                height: cfg.size,
                width: cfg.size,
                token_index: samples
                    .iter()
                    .flat_map(|x| {
                        x.text.tokens.facial_token_idx[..MAX_FACIALS]
                            .iter()
                            .map(|&i| i as i64)
                    })
                    .collect(),
                valid: samples
                    .iter()
                    .flat_map(|x| x.text.tokens.facial_token_idx_mask[..MAX_FACIALS].to_vec())
                    .collect(),
            },
            foreground: masked.then_some(ForegroundMasks {
                masks: foreground,
                batch: b,
                height: cfg.size,
                width: cfg.size,
            }),
        };
        let out = forward(
            &self.net,
            &self.process,
            &self.probe,
            &inputs,
            cfg.loc_weight,
        )?;
        let total = values(out.total.clone())[0];
        let noise_loss = values(out.noise_loss.clone())[0];
        let loc_loss = out.localization.clone().map_or(0.0, |l| values(l)[0]);
        if !total.is_finite() {
            return Err(TrainError::NotFinite {
                step: self.step + 1,
                noise: noise_loss,
                loc: loc_loss,
            });
        }
        Ok((
            out.total,
            StepReport {
                step: self.step + 1,
                noise_loss,
                loc_loss,
                total,
                masked: usize::from(masked),
                skipped,
            },
        ))
    }
}
