//! The ConsistentID pipeline (SD1.5), as the official `ConsistentIDStableDiffusionPipeline`:
//! face parsing → facial regions → marked prompt → text, ID and region embeddings →
//! the three conditionings → the merge-step denoising loop.
//!
//! One model folder: the diffusers SD1.5 layout plus `image_encoder/`, `ConsistentID-v1.bin` and
//! `face_parsing.pth`. Every dimension comes from the configs and the checkpoint.

use std::sync::OnceLock;

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::{DenoiseLoop, StableDiffusion};
use crate::bisenet::BiSeNet;
use crate::bisenet::labels::{CLASSES, official_name};
use crate::bisenet::preprocess as parsing;
use crate::bisenet::regions::{Mask, facial_regions, region_image};
use crate::clip::image_processor;
use crate::clip::{ClipTokenizer, ClipVisionModelWithProjection};
use crate::consistentid::ConsistentIdModules;
use crate::consistentid::conditioning::Conditioning;
use crate::consistentid::prompt::{ConsistentIdPrompt, FACIAL_CAPTION, build_prompt};
use crate::image::RgbImage;
use crate::rng::NoiseRng;
use crate::weights::{MemorySource, WeightSource};
use crate::{Error, Result};

/// File names inside the model folder.
pub const CHECKPOINT: &str = "ConsistentID-v1.bin";
pub const PARSING: &str = "face_parsing.pth";
pub const IMAGE_ENCODER: &str = "image_encoder";
/// At most this many facial regions.
pub const MAX_FACIALS: usize = 5;

/// Every model of the pipeline, loaded once.
pub struct ConsistentIdPipeline {
    pub sd: StableDiffusion,
    /// The SD tokenizer with `<|image|>` and `<|facial|>` added.
    pub tokenizer: ClipTokenizer,
    pub image_encoder: ClipVisionModelWithProjection,
    pub modules: ConsistentIdModules,
    pub bisenet: BiSeNet,
    /// Whether the checkpoint's LoRA `up` weights are all zero (its LoRA then does nothing).
    pub lora_up_all_zero: bool,
    /// CLIP `hidden_states[-2]` of the all-zero image, `[1, 257, C]`, once computed.
    zero_features: OnceLock<Tensor<3>>,
}

/// Everything computed before denoising.
pub struct Prepared {
    pub prompt: ConsistentIdPrompt,
    /// The region names kept (official mask-dict names, e.g. `Right_Ear`).
    pub regions: Vec<String>,
    /// CLIP `hidden_states[-2]` of the whole photo, `[1, 257, C]`.
    pub clip_penultimate: Tensor<3>,
    /// The 4 ID tokens, `[1, 4, D]`.
    pub id_tokens: Tensor<3>,
    pub conditioning: Conditioning,
}

impl ConsistentIdPipeline {
    /// Loads the folder; the SD networks, their adapters and CLIP ViT-H keep and compute in
    /// `dtype`, while BiSeNet and the ConsistentID projections (small) stay in f32.
    pub fn load(source: &dyn WeightSource, dtype: DType, device: &Device) -> Result<Self> {
        // The SD components and the ConsistentID/CLIP ViT-H side are independent: two threads.
        let (sd_side, id_side) = crate::parallel::join(
            || -> Result<_> {
                let sd = StableDiffusion::load(source, None, dtype, device)?;
                let bisenet = BiSeNet::load(
                    &source.read(PARSING)?,
                    &source.display_path(PARSING),
                    device,
                )?;
                Ok((sd, bisenet))
            },
            || -> Result<_> {
                let modules = ConsistentIdModules::load(
                    &source.read(CHECKPOINT)?,
                    &source.display_path(CHECKPOINT),
                    device,
                )?;
                let image_encoder = ClipVisionModelWithProjection::load(
                    source,
                    IMAGE_ENCODER,
                    None,
                    dtype,
                    device,
                )?;
                Ok((modules, image_encoder))
            },
        );
        let (mut sd, bisenet) = sd_side?;
        let (modules, image_encoder) = id_side?;
        install_adapters(&mut sd, &modules, dtype, device)?;
        if image_encoder
            .vision_model
            .embeddings
            .patch_embedding
            .weight
            .dims()[0]
            != modules.image_proj.clip_dim()
            || modules.facial_encoder.clip_dim() != modules.image_proj.clip_dim()
        {
            return Err(Error::WeightMismatch {
                path: source.display_path(CHECKPOINT),
                reason: "its CLIP width differs from image_encoder/'s".into(),
            });
        }
        let tokenizer = ClipTokenizer::from_source(source, "tokenizer")?.with_consistentid_tokens();
        Ok(Self {
            lora_up_all_zero: modules.lora_up_all_zero(),
            sd,
            tokenizer,
            image_encoder,
            modules,
            bisenet,
            zero_features: OnceLock::new(),
        })
    }

    fn device(&self) -> Device {
        self.sd.device.clone()
    }

    /// Takes the weights of another `ConsistentID-v1.bin` of the same architecture (a training
    /// run's, to draw its sample portraits): ProjPlus, the FacialEncoder and the processors.
    pub fn use_checkpoint(&mut self, bytes: &[u8], path: &str, dtype: DType) -> Result<()> {
        let device = self.device();
        let modules = ConsistentIdModules::load(bytes, path, &device)?;
        let (old, new) = (&self.modules.image_proj, &modules.image_proj);
        if (old.id_dim(), old.clip_dim(), old.num_tokens)
            != (new.id_dim(), new.clip_dim(), new.num_tokens)
        {
            return Err(Error::WeightMismatch {
                path: path.to_string(),
                reason: "its ID projection has another shape than the loaded one".into(),
            });
        }
        install_adapters(&mut self.sd, &modules, dtype, &device)?;
        self.lora_up_all_zero = modules.lora_up_all_zero();
        self.modules = modules;
        Ok(())
    }

    /// `hidden_states[-2]` of normalised pixels `[n, 3, S, S]`.
    fn penultimate(&self, pixels: Vec<f32>, n: usize) -> Result<Tensor<3>> {
        let s = self.image_encoder.image_size();
        let x: Tensor<4> = Tensor::from_data(TensorData::new(pixels, [n, 3, s, s]), &self.device());
        Ok(self.image_encoder.forward(x)?.penultimate())
    }

    /// `hidden_states[-2]` of the all-zero (normalised) image, `[1, 257, C]`: the unconditional
    /// input of every job and the padding of the region images. It depends on the weights
    /// only, so it is computed on first use and kept (upstream computes it 6 times a job).
    fn zero_image_features(&self) -> Result<Tensor<3>> {
        if let Some(t) = self.zero_features.get() {
            return Ok(t.clone());
        }
        let s = self.image_encoder.image_size();
        let t = self.penultimate(vec![0.0; 3 * s * s], 1)?;
        Ok(self.zero_features.get_or_init(|| t).clone())
    }

    /// Runs everything up to the conditionings. `id_embedding` is the L2-normalised ArcFace
    /// embedding `[1, 512]` of `face`.
    pub fn prepare(
        &self,
        face: &RgbImage,
        id_embedding: Tensor<2>,
        prompt: &str,
        negative_prompt: Option<&str>,
    ) -> Result<Prepared> {
        let regions = self.parse_regions(face)?;
        self.prepare_with_regions(
            face,
            &regions,
            id_embedding,
            prompt,
            negative_prompt,
            FACIAL_CAPTION,
        )
    }

    /// Face parsing and the official region selection: (official name, mask) in mask order.
    pub fn parse_regions(&self, face: &RgbImage) -> Result<Vec<(String, Mask)>> {
        let labels = self.bisenet.label_map(face, &self.device())?;
        Self::regions_from_labels(&labels)
    }

    /// The official region selection from a `512 × 512` BiSeNet label map (values 0–18),
    /// e.g. one computed in the browser: (official name, mask) in mask order.
    pub fn regions_from_labels(labels: &[u8]) -> Result<Vec<(String, Mask)>> {
        let s = parsing::SIZE;
        if labels.len() != s * s {
            return Err(Error::Input {
                name: "face_parsing".into(),
                reason: format!("expected a {s}×{s} label map, got {} labels", labels.len()),
            });
        }
        if let Some(bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES.len()) {
            return Err(Error::Input {
                name: "face_parsing".into(),
                reason: format!(
                    "label {bad} is not a BiSeNet class (0 to {})",
                    CLASSES.len() - 1
                ),
            });
        }
        Ok(facial_regions(labels, s, s)
            .into_iter()
            .map(|(_, l, m)| (official_name(l).to_string(), m))
            .collect())
    }

    /// [`Self::prepare`] after [`Self::parse_regions`].
    pub fn prepare_with_regions(
        &self,
        face: &RgbImage,
        regions: &[(String, Mask)],
        id_embedding: Tensor<2>,
        prompt: &str,
        negative_prompt: Option<&str>,
        caption: &str,
    ) -> Result<Prepared> {
        let device = self.device();
        let names: Vec<String> = regions.iter().map(|(n, _)| n.clone()).collect();

        // The marked prompt and the text embeddings.
        let p = build_prompt(prompt, caption, &names, &self.tokenizer, MAX_FACIALS)?;
        let e_fac = self
            .sd
            .text_encoder
            .forward_ids(std::slice::from_ref(&p.input_ids), &device)
            .last_hidden_state;
        let texts = self
            .sd
            .encode_prompt(&p.prompt_text_only, negative_prompt)?;
        let [_, len, dim] = texts.dims();
        let n_txt = texts.clone().slice([0..1, 0..len, 0..dim]);
        let e_txt = texts.slice([1..2, 0..len, 0..dim]);

        // ID tokens from the whole photo (no face crop, as upstream) and their null version.
        let size = self.image_encoder.image_size();
        let pixels = image_processor::preprocess(face, size);
        let plane = pixels.len();
        let h = self.penultimate(pixels, 1)?;
        let zero = self.zero_image_features()?;
        let proj = &self.modules.image_proj;
        let id_tokens = proj.forward(id_embedding, h.clone())?;
        let id_tokens0 = proj.forward(Tensor::zeros([1, proj.id_dim()], &device), zero.clone())?;

        // Region images in mask order, padded to 5 with zero images (whose features are the
        // cached zero-image ones), and the zero-image features of the unconditional side.
        let kept: Vec<&(String, Mask)> = regions
            .iter()
            .filter(|(n, _)| p.kept_regions.contains(n))
            .take(MAX_FACIALS)
            .collect();
        let mut region_pixels = Vec::with_capacity(kept.len() * plane);
        for (_, mask) in &kept {
            region_pixels.extend(image_processor::preprocess(&region_image(face, mask), size));
        }
        let mut rows = Vec::with_capacity(MAX_FACIALS);
        if !kept.is_empty() {
            rows.push(self.penultimate(region_pixels, kept.len())?);
        }
        rows.extend(std::iter::repeat_n(zero.clone(), MAX_FACIALS - kept.len()));
        let f = Tensor::cat(rows, 0);
        let f0 = Tensor::cat(vec![zero; MAX_FACIALS], 0);
        let enc = &self.modules.facial_encoder;
        let p_fac = enc.forward(e_fac, f, &p.facial_token_mask, &p.facial_token_idx_mask)?;
        // Upstream fuses the zero-image features into the negative prompt at the positive
        // prompt's facial positions (kept: the released weights were used this way).
        let p_fac0 = enc.forward(n_txt, f0, &p.facial_token_mask, &p.facial_token_idx_mask)?;
        let conditioning = Conditioning {
            null: Tensor::cat(vec![p_fac0, id_tokens0], 1),
            augmented: Tensor::cat(vec![p_fac, id_tokens.clone()], 1),
            text_only: Tensor::cat(vec![e_txt, id_tokens.clone()], 1),
        };
        Ok(Prepared {
            regions: kept.iter().map(|(n, _)| n.clone()).collect(),
            prompt: p,
            clip_penultimate: h,
            id_tokens,
            conditioning,
        })
    }
}

/// The official denoising loop: CFG always on, context switched at `merge_step`, then decoded
/// to an image in [0, 1].
pub fn generate(
    sd: &StableDiffusion,
    conditioning: &Conditioning,
    spec: &DenoiseLoop,
    merge_step: usize,
    init_latents: Tensor<4>,
    rng: &mut NoiseRng,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<Tensor<4>> {
    conditioning.check()?;
    let latents = sd.denoise_with(
        spec,
        &|i| conditioning.at_step(i, merge_step),
        init_latents,
        rng,
        on_step,
    )?;
    Ok(sd.decode(latents))
}

/// Installs the checkpoint's processors (LoRA and the ID tokens' k/v) on every UNet attention.
fn install_adapters(
    sd: &mut StableDiffusion,
    modules: &ConsistentIdModules,
    dtype: DType,
    device: &Device,
) -> Result<()> {
    let adapters = MemorySource {
        files: [(
            "adapter_modules.safetensors".to_string(),
            modules.adapter_safetensors()?,
        )]
        .into(),
    };
    sd.unet.load_ip_lora_adapters(
        &adapters,
        "adapter_modules.safetensors",
        modules.image_proj.num_tokens,
        1.0,
        dtype,
        device,
    )
}
