//! The photo inputs of a prediction (`image`, `mask`, `strength`, `controlnet`,
//! `control_image`, `controlnet_conditioning_scale`, `control_guidance_start/end`, `into`):
//! their checks at submission (numbers first, then every image decoded, before anything is
//! stored), their storage beside the face (deleted with it when the job ends unless
//! `keep_face`), and the engine's photo job when the job runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use consistentid_core::api::PredictionInput;
use consistentid_core::api::input::IntoInput;
use consistentid_core::controlnet::ControlNetModel;
use consistentid_core::error::FieldError;
use consistentid_core::face::FaceChoice;
use consistentid_core::face::choose::check_box;
use consistentid_core::image::canny::canny_image;
use consistentid_core::pipeline::into::{IntoJob, IntoSettings, Paste, Region};
use consistentid_core::pipeline::photo::PhotoInput;
use consistentid_core::pipeline::{ControlJob, Engine, PhotoJob};

use super::AppState;
use super::jobs::{check_image, file_id_of, image_type, resolve_file};
use super::problem::ApiError;
use super::views;
use crate::io::image::decode;

/// Where a host keeps its ControlNets: `<model>/controlnet/<name>/` (diffusers layout) or
/// `<model>/controlnet/<name>.safetensors` (a single file, SD1.5 layout).
pub const CONTROLNET_DIR: &str = "controlnet";

/// Conditioning scales beyond this only burn the image.
const MAX_SCALE: f64 = 5.0;

/// The ControlNets installed next to the model, by name.
pub fn controlnet_names(model: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(model.join(CONTROLNET_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let name = e.file_name().to_str()?.to_string();
            if path.join("config.json").is_file() {
                Some(name)
            } else if path.is_file() {
                name.strip_suffix(".safetensors").map(str::to_string)
            } else {
                None
            }
        })
        .collect();
    names.sort();
    names
}

/// Loaded ControlNets, kept for the next job.
#[derive(Default)]
pub struct ControlNets(Mutex<HashMap<String, Arc<ControlNetModel>>>);

impl ControlNets {
    fn get(
        &self,
        model: &Path,
        name: &str,
        engine: &Engine,
    ) -> Result<Arc<ControlNetModel>, String> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(net) = cache.get(name) {
            return Ok(net.clone());
        }
        let dir = model.join(CONTROLNET_DIR);
        let single = dir.join(format!("{name}.safetensors"));
        let path = if single.is_file() {
            single
        } else {
            dir.join(name)
        };
        let dtype = engine.pipe.sd.unet.dtype();
        let net = crate::models::load_controlnet(&path, dtype, &engine.pipe.sd.device)
            .map_err(|e| format!("controlnet {name}: {e}"))?;
        let net = Arc::new(net);
        cache.insert(name.to_string(), net.clone());
        Ok(net)
    }
}

/// Every number and name of the photo inputs, without reading a file.
pub fn field_errors(input: &PredictionInput, steps: usize, model: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut bad = |f: &str, m: String| errors.push(FieldError::new(f, m));
    let photo = input.image.is_some() || input.mask.is_some();
    if let Some(s) = input.strength {
        if !photo {
            bad("strength", "needs image or mask".into());
        } else if !(s > 0.0 && s <= 1.0) {
            bad("strength", format!("must be in (0, 1] (got {s})"));
        } else if (steps as f64 * s) < 1.0 {
            bad(
                "strength",
                format!("{s} of {steps} steps is no step at all"),
            );
        }
    }
    if let Some(into) = &input.into {
        if input.image.is_none() {
            bad("into", "needs image: the photo to put the face into".into());
        }
        into_errors(into, &mut bad);
    }
    let control_fields = input.control_image.is_some()
        || input.controlnet_conditioning_scale.is_some()
        || input.control_guidance_start.is_some()
        || input.control_guidance_end.is_some();
    match &input.controlnet {
        None if control_fields => bad(
            "controlnet",
            "is needed by control_image and the control settings".into(),
        ),
        None => {}
        Some(name) => {
            let names = controlnet_names(model);
            if !names.contains(name) {
                bad(
                    "controlnet",
                    format!(
                        "no ControlNet `{name}` on this host (installed: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                );
            }
            if !photo {
                bad(
                    "controlnet",
                    "needs image or mask (the official ControlNet pipeline inpaints a photo)"
                        .into(),
                );
            }
            if input.control_image.is_none() {
                bad(
                    "control_image",
                    "is required with controlnet (an image, or `canny`)".into(),
                );
            }
            let scale = input.controlnet_conditioning_scale.unwrap_or(0.5);
            if !(scale.is_finite() && (0.0..=MAX_SCALE).contains(&scale)) {
                bad(
                    "controlnet_conditioning_scale",
                    format!("must be from 0 to {MAX_SCALE} (got {scale})"),
                );
            }
            let (start, end) = (
                input.control_guidance_start.unwrap_or(0.0),
                input.control_guidance_end.unwrap_or(1.0),
            );
            if !((0.0..=1.0).contains(&start) && end <= 1.0 && start < end) {
                bad(
                    "control_guidance_start",
                    format!(
                        "and control_guidance_end must satisfy 0 ≤ start < end ≤ 1 (got {start}, {end})"
                    ),
                );
            }
        }
    }
    errors
}

fn into_errors(into: &IntoInput, bad: &mut impl FnMut(&str, String)) {
    for r in into.regions.iter().flatten() {
        if Region::from_name(r).is_none() {
            bad(
                "into",
                format!("unknown region `{r}` (regions: face, hair, neck)"),
            );
        }
    }
    if into.regions.as_ref().is_some_and(Vec::is_empty) {
        bad("into", "regions must name at least one region".into());
    }
    if let Some(b) = &into.target_box
        && let Err(m) = check_box(b)
    {
        bad("into", format!("target_box {m}"));
    }
    for (name, v) in [
        ("mask_dilate", into.mask_dilate),
        ("mask_feather", into.mask_feather),
    ] {
        if v.is_some_and(|v| v > 256) {
            bad("into", format!("{name} must be at most 256 pixels"));
        }
    }
    if let Some(m) = into.crop_margin
        && !(m.is_finite() && (0.0..=4.0).contains(&m))
    {
        bad("into", format!("crop_margin must be from 0 to 4 (got {m})"));
    }
}

/// One checked image of a submission: its field, its bytes, the upload it came from.
type Checked = (&'static str, Arc<Vec<u8>>, Option<String>);

/// The photo images of a submission, checked and decoded, waiting to be stored.
#[derive(Default)]
pub struct Uploads(Vec<Checked>);

/// Resolves and fully decodes `image`, `mask` and `control_image` (unless `canny`).
pub async fn check_files(
    state: &AppState,
    owner: &str,
    input: &PredictionInput,
    limit: usize,
) -> Result<Uploads, ApiError> {
    let mut uploads = Uploads::default();
    let fields: [(&'static str, Option<&String>); 3] = [
        ("image", input.image.as_ref()),
        ("mask", input.mask.as_ref()),
        (
            "control_image",
            input
                .control_image
                .as_ref()
                .filter(|c| c.as_str() != "canny"),
        ),
    ];
    for (field, text) in fields {
        let Some(text) = text else { continue };
        let (bytes, upload) = resolve_file(state, owner, text, field, limit).await?;
        let bytes = Arc::new(bytes);
        check_image(bytes.clone(), field).await?;
        uploads.0.push((field, bytes, upload.map(|u| u.id)));
    }
    Ok(uploads)
}

/// Stores the checked images as the prediction's own files and points `input` at them.
pub async fn store(
    state: &AppState,
    owner: &str,
    id: &str,
    input: &mut PredictionInput,
    uploads: Uploads,
) -> Result<(), ApiError> {
    for (field, bytes, source) in uploads.0 {
        let content_type = image_type(&bytes)
            .ok_or_else(|| ApiError::field(field, "not a PNG, JPEG or WebP image"))?;
        let f = state
            .store
            .add_file(&bytes, owner, field, content_type, "upload", Some(id))
            .await?;
        if let Some(s) = &source {
            state.store.set_source(&f.id, s).await?;
        }
        let path = Some(views::file_path(&f.id));
        match field {
            "image" => input.image = path,
            "mask" => input.mask = path,
            _ => input.control_image = path,
        }
    }
    Ok(())
}

/// A stored image of the prediction (on the worker thread, which may block on the store).
fn read(
    state: &AppState,
    text: &str,
    field: &str,
) -> Result<consistentid_core::image::RgbImage, String> {
    let bytes = state.block_on(async {
        let f = match file_id_of(text) {
            Some(id) => state.store.file(id).await.ok().flatten(),
            None => None,
        }
        .ok_or_else(|| format!("the {field} is no longer stored"))?;
        state.store.read_blob(&f).await.map_err(|e| e.to_string())
    })?;
    decode(&bytes, field).map_err(|e| e.to_string())
}

/// The engine's photo job for a stored prediction (and the paste-back of `into`), or `None`.
pub fn build(
    state: &AppState,
    engine: &Engine,
    input: &PredictionInput,
    face: &consistentid_core::image::RgbImage,
    #[allow(clippy::ptr_arg)] warnings: &mut Vec<String>,
) -> Result<Option<(PhotoJob, Option<Paste>)>, String> {
    let image = input
        .image
        .as_deref()
        .map(|t| read(state, t, "image"))
        .transpose()?;
    let mask = input
        .mask
        .as_deref()
        .map(|t| read(state, t, "mask"))
        .transpose()?;
    let photo = image.as_ref().unwrap_or(face);
    if let Some(m) = &mask
        && input.into.is_none()
        && (m.width, m.height) != (photo.width, photo.height)
    {
        warnings.push(format!(
            "the mask is {}×{} and the photo {}×{}: each is resized to the output size on its own (as diffusers does)",
            m.width, m.height, photo.width, photo.height
        ));
    }
    let (mut job, paste) = match (&input.into, image) {
        (Some(into), Some(photo)) => {
            let job = IntoJob {
                photo,
                name: "image".into(),
                choice: into
                    .target_box
                    .map_or(FaceChoice::BestScore, FaceChoice::Overlapping),
                mask,
                settings: IntoSettings {
                    regions: match &into.regions {
                        Some(r) => r.iter().filter_map(|r| Region::from_name(r)).collect(),
                        None => vec![Region::Face],
                    },
                    dilate: into.mask_dilate.unwrap_or(8),
                    feather: into.mask_feather.unwrap_or(8),
                    margin: into.crop_margin.unwrap_or(0.6),
                },
                strength: input.strength.unwrap_or(1.0),
            };
            let (photo_job, paste) = engine.prepare_into(&job).map_err(|e| e.to_string())?;
            (photo_job, Some(paste))
        }
        (_, image) if image.is_some() || mask.is_some() => {
            let strength = input
                .strength
                .unwrap_or(if mask.is_some() { 1.0 } else { 0.8 });
            let (image, name) = match image {
                Some(i) => (i, "image"),
                None => (face.clone(), "face_image"),
            };
            let job = PhotoJob {
                input: PhotoInput {
                    image,
                    mask: mask.clone(),
                    strength,
                },
                image_name: name.into(),
                mask_name: mask.as_ref().map(|_| "mask".into()),
                controls: Vec::new(),
            };
            (job, None)
        }
        _ => return Ok(None),
    };
    if let Some(name) = &input.controlnet {
        let net = state.controlnets.get(&state.args.model, name, engine)?;
        let image = match input.control_image.as_deref() {
            Some("canny") | None => canny_image(&job.input.image, 100.0, 200.0),
            Some(text) => read(state, text, "control_image")?,
        };
        job.controls.push(ControlJob {
            net,
            name: name.clone(),
            image,
            scale: input.controlnet_conditioning_scale.unwrap_or(0.5),
            start: input.control_guidance_start.unwrap_or(0.0),
            end: input.control_guidance_end.unwrap_or(1.0),
        });
    }
    Ok(Some((job, paste)))
}
