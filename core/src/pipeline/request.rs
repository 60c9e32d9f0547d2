//! One generation request and its validation: every number and text a person (CLI flag, API
//! field) can give is checked here, once, before any model is loaded or anything is computed.
//!
//! Field names are the ones people know from Replicate and diffusers (`num_inference_steps`,
//! `guidance_scale`, `start_merge_step`, `num_outputs`); front ends map them to their own
//! spelling in messages.

use serde::{Deserialize, Serialize};

use crate::clip::tokenizer::{FACIAL_TOKEN, IMAGE_TOKEN};
pub use crate::consistentid::prompt::strip_reserved_markers;
use crate::consistentid::styles;
use crate::error::FieldError;
use crate::scheduler::SchedulerKind;
use crate::{Error, Result};

/// Image sides: multiples of 8 (the VAE's factor) within these bounds.
pub const MIN_SIDE: usize = 8;
pub const MAX_SIDE: usize = 2048;
/// Denoising steps (diffusers schedulers have 1000 training timesteps).
pub const MAX_STEPS: usize = 1000;
/// Images per request.
pub const MAX_OUTPUTS: usize = 16;
/// Guidance beyond this only burns the image.
pub const MAX_GUIDANCE: f64 = 50.0;
/// Characters of a prompt or negative prompt (CLIP reads at most 77 tokens anyway).
pub const MAX_PROMPT_CHARS: usize = 2000;

/// What to generate. `start_merge_step` is `Some` for ConsistentID portraits (a face is
/// given) and `None` for plain text-to-image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerationRequest {
    pub prompt: String,
    pub negative_prompt: Option<String>,
    /// A style preset by name (ConsistentID; `None` is infer.py's wrapping).
    pub style: Option<String>,
    pub num_inference_steps: usize,
    pub guidance_scale: f64,
    /// Steps `i <= start_merge_step` use the text-only prompt; later ones the identity.
    pub start_merge_step: Option<usize>,
    /// Seed of image 0 (image k uses seed + k); `None` draws one.
    pub seed: Option<u64>,
    pub width: usize,
    pub height: usize,
    pub num_outputs: usize,
    pub scheduler: SchedulerKind,
    /// Best-of-N (ConsistentID): make this many candidates from consecutive seeds and keep
    /// the `num_outputs` most like the reference face.
    #[serde(default)]
    pub best_of: Option<usize>,
    /// Inference-time ablations (`eval run --preset`); none by default and not in the API.
    #[serde(default)]
    pub ablation: Ablation,
}

/// The inference-time ablations of the paper's study that need no training (train-eval spec
/// D): fewer facial regions, the overall identity tokens off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ablation {
    /// Keep at most this many facial regions (0–5), in the official mask order.
    pub max_regions: Option<usize>,
    /// Zero the 4 identity tokens (ProjPlus's output) in the conditional prompt.
    pub no_id_tokens: bool,
    /// Leave the facial caption (the template `Detail:` clauses and their facial tokens) out
    /// of the prompt: the fine-grained branch gets nothing to fuse.
    #[serde(default)]
    pub no_facial_caption: bool,
}

impl Ablation {
    /// A short name for PNG parameters, or `None` when nothing is ablated.
    pub fn label(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(n) = self.max_regions {
            parts.push(format!("{n} facial regions"));
        }
        if self.no_id_tokens {
            parts.push("no identity tokens".into());
        }
        if self.no_facial_caption {
            parts.push("no facial caption".into());
        }
        (!parts.is_empty()).then(|| parts.join(" + "))
    }
}

impl GenerationRequest {
    /// The official ConsistentID settings (`infer.py`: Euler, 50 steps, merge step 30,
    /// guidance 5, 512×768).
    pub fn consistentid(prompt: &str) -> Self {
        Self {
            prompt: prompt.to_string(),
            negative_prompt: None,
            style: None,
            num_inference_steps: 50,
            guidance_scale: 5.0,
            start_merge_step: Some(30),
            seed: None,
            width: 512,
            height: 768,
            num_outputs: 1,
            scheduler: SchedulerKind::Euler,
            best_of: None,
            ablation: Ablation::default(),
        }
    }

    /// diffusers' `StableDiffusionPipeline` defaults (guidance 7.5, 512×512).
    pub fn txt2img(prompt: &str) -> Self {
        Self {
            guidance_scale: 7.5,
            height: 512,
            start_merge_step: None,
            ..Self::consistentid(prompt)
        }
    }

    /// Checks every field and returns the request as it will run (reserved markers removed
    /// from the texts) with warnings for the user. All problems are reported at once.
    pub fn validate(mut self) -> Result<(Self, Vec<String>)> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut bad = |field: &str, message: String| errors.push(FieldError::new(field, message));

        for (field, side) in [("width", self.width), ("height", self.height)] {
            if !side.is_multiple_of(8) || !(MIN_SIDE..=MAX_SIDE).contains(&side) {
                bad(
                    field,
                    format!("must be a multiple of 8 from {MIN_SIDE} to {MAX_SIDE} (got {side})"),
                );
            }
        }
        let steps = self.num_inference_steps;
        if !(1..=MAX_STEPS).contains(&steps) {
            bad(
                "num_inference_steps",
                format!("must be from 1 to {MAX_STEPS} (got {steps})"),
            );
        }
        let g = self.guidance_scale;
        if !g.is_finite() || !(0.0..=MAX_GUIDANCE).contains(&g) {
            bad(
                "guidance_scale",
                format!("must be a number from 0 to {MAX_GUIDANCE} (got {g})"),
            );
        }
        if !(1..=MAX_OUTPUTS).contains(&self.num_outputs) {
            bad(
                "num_outputs",
                format!("must be from 1 to {MAX_OUTPUTS} (got {})", self.num_outputs),
            );
        }
        if let Some(n) = self.best_of {
            if self.start_merge_step.is_none() {
                bad(
                    "best_of",
                    "needs a face: candidates are ranked by their likeness to it".into(),
                );
            } else if !(self.num_outputs..=MAX_OUTPUTS).contains(&n) {
                bad(
                    "best_of",
                    format!(
                        "must be from num_outputs ({}) to {MAX_OUTPUTS} (got {n})",
                        self.num_outputs
                    ),
                );
            }
        }
        if let Some(name) = &self.style
            && styles::find(name).is_none()
        {
            bad(
                "style",
                format!(
                    "unknown style `{name}` (styles: {})",
                    styles::names().join(", ")
                ),
            );
        }
        if self.start_merge_step.is_none() && self.style.is_some() {
            bad(
                "style",
                "styles need a face (ConsistentID generation)".into(),
            );
        }
        for (field, text) in [
            ("prompt", Some(&mut self.prompt)),
            ("negative_prompt", self.negative_prompt.as_mut()),
        ] {
            let Some(text) = text else { continue };
            let chars = text.chars().count();
            if chars > MAX_PROMPT_CHARS {
                bad(
                    field,
                    format!("is {chars} characters long; at most {MAX_PROMPT_CHARS}"),
                );
            }
            if let Some(clean) = strip_reserved_markers(text) {
                warnings.push(format!(
                    "{field}: removed {IMAGE_TOKEN} / {FACIAL_TOKEN}, which are reserved for the pipeline's own markers"
                ));
                *text = clean;
            }
        }
        if let Some(merge) = self.start_merge_step
            && steps >= 1
            && merge + 1 >= steps
        {
            warnings.push(format!(
                "start_merge_step {merge} with {steps} steps: every step uses the text-only prompt, so the identity will not be used (it applies from step start_merge_step + 1)"
            ));
        }
        if errors.is_empty() {
            Ok((self, warnings))
        } else {
            Err(Error::InvalidFields(errors))
        }
    }

    /// How many images are made: `best_of` candidates, else `num_outputs`.
    pub fn images_made(&self) -> usize {
        self.best_of.unwrap_or(0).max(self.num_outputs)
    }

    /// The latent shape `[1, 4, height / 8, width / 8]` of one image.
    pub fn latent_hw(&self) -> (usize, usize) {
        (self.height / 8, self.width / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: GenerationRequest) -> Vec<String> {
        match r.validate() {
            Err(Error::InvalidFields(e)) => e.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let (r, w) = GenerationRequest::consistentid("a woman’s portrait")
            .validate()
            .unwrap();
        assert!(w.is_empty());
        assert_eq!(r.prompt, "a woman’s portrait");
        assert!(GenerationRequest::txt2img("x").validate().is_ok());
    }

    #[test]
    fn every_bad_number_is_reported_at_once() {
        let r = GenerationRequest {
            width: 100_000,
            height: 516,
            num_inference_steps: 2000,
            guidance_scale: f64::NAN,
            num_outputs: 0,
            style: Some("nope".into()),
            ..GenerationRequest::consistentid("x")
        };
        assert_eq!(
            fields(r),
            [
                "width",
                "height",
                "num_inference_steps",
                "guidance_scale",
                "num_outputs",
                "style"
            ]
        );
        for g in [f64::INFINITY, -1.0, 51.0] {
            let r = GenerationRequest {
                guidance_scale: g,
                ..GenerationRequest::txt2img("x")
            };
            assert_eq!(fields(r), ["guidance_scale"]);
        }
        let long = GenerationRequest::txt2img(&"é".repeat(MAX_PROMPT_CHARS + 1));
        assert_eq!(fields(long), ["prompt"]);
        for (best_of, outputs, face) in [(2, 3, true), (17, 1, true), (4, 1, false)] {
            let r = GenerationRequest {
                best_of: Some(best_of),
                num_outputs: outputs,
                ..if face {
                    GenerationRequest::consistentid("x")
                } else {
                    GenerationRequest::txt2img("x")
                }
            };
            assert_eq!(fields(r), ["best_of"], "{best_of} {outputs} {face}");
        }
        let r = GenerationRequest {
            best_of: Some(4),
            num_outputs: 2,
            ..GenerationRequest::consistentid("x")
        };
        assert_eq!(r.validate().unwrap().0.images_made(), 4);
    }

    #[test]
    fn markers_are_removed_with_a_warning_and_late_merge_warns() {
        let mut r = GenerationRequest::consistentid("a <|image|> man <|facial|>");
        r.negative_prompt = Some("<|facial|>blurry".into());
        r.start_merge_step = Some(50);
        let (r, w) = r.validate().unwrap();
        assert_eq!(r.prompt, "a  man ");
        assert_eq!(r.negative_prompt.as_deref(), Some("blurry"));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[2].contains("identity will not be used"));
    }
}
