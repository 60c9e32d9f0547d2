//! The `input` object of a prediction: the request fields people know from Replicate and
//! diffusers, plus the face (an uploaded file's URL or a data URI), an optional stored
//! identity and an optional label map computed by the browser.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;
use crate::pipeline::request::GenerationRequest;
use crate::scheduler::SchedulerKind;

/// Every field is optional in JSON; absent ones take `generate --face`'s defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PredictionInput {
    /// What to draw (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// A style preset by name (absent: the official infer.py wrapping).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_inference_steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guidance_scale: Option<f64>,
    /// When the identity starts being applied: steps after this one use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_merge_step: Option<usize>,
    /// Seed of image 0 (image k uses seed + k); absent: drawn and echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_outputs: Option<usize>,
    /// euler, euler-a, ddim or dpmpp-2m-karras.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedulerKind>,
    /// The face photo: the URL of a file uploaded to this host (`POST /v1/files`) or a data URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_image: Option<String>,
    /// A stored identity (512 numbers, ArcFace's normed embedding); replaces detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_embedding: Option<Vec<f32>>,
    /// The browser's 512×512 BiSeNet label map (values 0–18) as a PNG data URI; replaces
    /// face parsing on the host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_parsing: Option<String>,
    /// Which face gives the identity when the photo has several: `[x1, y1, x2, y2]` in the
    /// photo's pixels; the detected face centred in it is used (the one overlapping it most if
    /// several; absent: the official rule, the highest-scoring face).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_box: Option<[f32; 4]>,
    /// Keep the uploaded face after the job ends (default: deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_face: Option<bool>,
    /// Make this many candidates (consecutive seeds) and return the `num_outputs` most like
    /// the face, best first; `candidates` lists every one's score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_of: Option<usize>,
    /// A photo to start from (data URI or upload URL): repainted where `mask` is white, or as
    /// a whole (image-to-image) without one; with `into`, the photo the face is put into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// White repaints, black keeps (data URI or upload URL). Without `image` the face photo
    /// itself is inpainted, as the official inpainting pipeline does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// The share of the schedule run from the noised photo, in (0, 1] (default 1 with a mask,
    /// 0.8 without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    /// The name of a ControlNet installed on this host (`GET /v1/health` lists them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controlnet: Option<String>,
    /// The ControlNet's control image (data URI or upload URL), or `canny` for the Canny edges
    /// of the photo.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_image: Option<String>,
    /// Default 0.5 (the official ControlNet pipeline's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controlnet_conditioning_scale: Option<f64>,
    /// The share of the run before which the ControlNet is left out (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_guidance_start: Option<f64>,
    /// The share of the run after which it is left out (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_guidance_end: Option<f64>,
    /// Put the face into `image` automatically: its face found, masked and repainted, the
    /// result pasted back at the photo's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub into: Option<IntoInput>,
}

/// The automatic mode's settings (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IntoInput {
    /// Regions repainted: `face`, `hair`, `neck` (default `["face"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// Which face of the photo: `[x1, y1, x2, y2]`, the face centred in it (default: the
    /// highest-scoring one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_box: Option<[f32; 4]>,
    /// Grow the mask by this many photo pixels (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_dilate: Option<usize>,
    /// Blend over this many photo pixels at the mask's edge (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_feather: Option<usize>,
    /// The crop: the face box's larger side plus this share of it on each side (default 0.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_margin: Option<f64>,
}

/// The names accepted in `input`.
pub const FIELDS: [&str; 27] = [
    "prompt",
    "negative_prompt",
    "style",
    "num_inference_steps",
    "guidance_scale",
    "start_merge_step",
    "seed",
    "width",
    "height",
    "num_outputs",
    "scheduler",
    "face_image",
    "id_embedding",
    "face_parsing",
    "face_box",
    "keep_face",
    "best_of",
    "image",
    "mask",
    "strength",
    "controlnet",
    "control_image",
    "controlnet_conditioning_scale",
    "control_guidance_start",
    "control_guidance_end",
    "into",
    "version",
];

impl PredictionInput {
    /// Reads `input` field by field, so that every wrong type or unknown name is reported at
    /// once with its field.
    pub fn from_json(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldError::new("input", "must be a JSON object")]);
        };
        let mut errors = Vec::new();
        for key in map.keys() {
            if !FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(
                    key,
                    format!(
                        "unknown input (inputs: {})",
                        FIELDS[..FIELDS.len() - 1].join(", ")
                    ),
                ));
            }
        }
        // Each field on its own, so one bad type does not hide the others.
        let mut object = serde_json::Map::new();
        for (key, v) in map {
            if !FIELDS[..FIELDS.len() - 1].contains(&key.as_str()) || v.is_null() {
                continue;
            }
            let mut one = serde_json::Map::new();
            one.insert(key.clone(), v.clone());
            match serde_json::from_value::<PredictionInput>(Value::Object(one)) {
                Ok(_) => {
                    object.insert(key.clone(), v.clone());
                }
                Err(e) => errors.push(FieldError::new(key, type_message(&e.to_string()))),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        serde_json::from_value(Value::Object(object))
            .map_err(|e| vec![FieldError::new("input", e.to_string())])
    }

    /// The generation request (not yet validated), with `generate --face`'s defaults.
    pub fn to_request(&self) -> Result<GenerationRequest, Vec<FieldError>> {
        let Some(prompt) = &self.prompt else {
            return Err(vec![FieldError::new("prompt", "is required")]);
        };
        let base = GenerationRequest::consistentid(prompt);
        Ok(GenerationRequest {
            negative_prompt: self.negative_prompt.clone(),
            style: self.style.clone(),
            num_inference_steps: self.num_inference_steps.unwrap_or(base.num_inference_steps),
            guidance_scale: self.guidance_scale.unwrap_or(base.guidance_scale),
            start_merge_step: self.start_merge_step.or(base.start_merge_step),
            seed: self.seed,
            width: self.width.unwrap_or(base.width),
            height: self.height.unwrap_or(base.height),
            num_outputs: self.num_outputs.unwrap_or(base.num_outputs),
            scheduler: self.scheduler.unwrap_or(base.scheduler),
            best_of: self.best_of,
            ..base
        })
    }
}

/// serde's message without its "at line 1 column 9" tail.
fn type_message(text: &str) -> String {
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let v: Value = serde_json::json!({
            "prompt": 3, "width": "wide", "num_outputs": -1, "colour": "red", "seed": 7
        });
        let mut fields: Vec<String> = PredictionInput::from_json(&v)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        fields.sort();
        assert_eq!(fields, ["colour", "num_outputs", "prompt", "width"]);
        let ok =
            PredictionInput::from_json(&serde_json::json!({"prompt": "a", "seed": 7})).unwrap();
        assert_eq!(ok.to_request().unwrap().seed, Some(7));
        assert_eq!(
            PredictionInput::default().to_request().unwrap_err()[0].field,
            "prompt"
        );
    }
}
