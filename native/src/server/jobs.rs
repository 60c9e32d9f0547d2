//! From a request body to a queued job, and from a stored job to the engine's input. Every
//! check happens at submission, before anything is queued: the fields, the face image (header
//! limits, then a full decode), the label map, the identity embedding.

use std::sync::Arc;

use base64::Engine as _;
use consistentid_core::api::{PredictionInput, Status};
use consistentid_core::bisenet::labels::CLASSES;
use consistentid_core::bisenet::preprocess::SIZE as PARSING_SIZE;
use consistentid_core::error::FieldError;
use consistentid_core::face::FaceChoice;
use consistentid_core::face::choose::check_box;
use consistentid_core::image::check_header;
use consistentid_core::pipeline::engine::ID_DIM;
use consistentid_core::pipeline::{FaceJob, IdentitySource};
use serde_json::Value;

use super::AppState;
use super::ids::{is_id, new_id, now};
use super::problem::ApiError;
use super::store::{FileRecord, Record};
use crate::io::image::decode;

/// Content types accepted for images.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Png => Some("image/png"),
        image::ImageFormat::Jpeg => Some("image/jpeg"),
        image::ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// Checks an image fully (header limits, then a decode) off the async threads; its size as
/// decoded (EXIF orientation applied).
pub async fn check_image(
    bytes: Arc<Vec<u8>>,
    field: &'static str,
) -> Result<(usize, usize), ApiError> {
    let result = tokio::task::spawn_blocking(move || {
        decode(&bytes, field).map(|image| (image.width, image.height))
    })
    .await
    .map_err(ApiError::internal)?;
    result.map_err(|e| ApiError::field(field, image_message(&e)))
}

/// The reason part of an image error (the field names the image).
fn image_message(e: &consistentid_core::Error) -> String {
    match e {
        consistentid_core::Error::Image { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Bytes of a base64 data URI (`data:image/png;base64,…`).
fn data_uri(text: &str, field: &str) -> Result<Vec<u8>, ApiError> {
    let rest = &text[5..];
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| ApiError::field(field, "a data URI needs a comma before its data"))?;
    if !meta.ends_with(";base64") {
        return Err(ApiError::field(field, "only base64 data URIs are accepted"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| ApiError::field(field, format!("bad base64 data: {e}")))
}

/// The file id in a URL of this host (`…/v1/files/{id}`).
fn file_id_of(url: &str) -> Option<&str> {
    let id = url.rsplit_once("/v1/files/")?.1;
    is_id(id).then_some(id)
}

/// An image given as a data URI or the URL of the owner's upload: (bytes, file record if
/// already stored).
fn resolve_file(
    state: &AppState,
    owner: &str,
    text: &str,
    field: &'static str,
    limit: usize,
) -> Result<(Vec<u8>, Option<FileRecord>), ApiError> {
    if text.starts_with("data:") {
        let bytes = data_uri(text, field)?;
        if bytes.len() > limit {
            return Err(ApiError::field(
                field,
                format!("is {} bytes; at most {limit}", bytes.len()),
            ));
        }
        return Ok((bytes, None));
    }
    let Some(id) = file_id_of(text) else {
        return Err(ApiError::field(
            field,
            "must be a data URI or the URL of a file uploaded to this host (POST /v1/files); other URLs are not fetched",
        ));
    };
    match state.store.file(id)? {
        Some(f) if f.owner == owner && f.kind == "upload" => {
            let bytes = state.store.read_blob(&f)?;
            Ok((bytes, Some(f)))
        }
        _ => Err(ApiError::field(field, "no such uploaded file of yours")),
    }
}

/// A label map PNG: 8-bit greyscale, 512 × 512, values 0–18.
pub fn decode_label_map(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let header = check_header(bytes, "face_parsing").map_err(|e| image_message(&e))?;
    if header.format != image::ImageFormat::Png {
        return Err("must be a PNG".into());
    }
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| format!("cannot decode the PNG: {e}"))?;
    let image::DynamicImage::ImageLuma8(gray) = img else {
        return Err("must be an 8-bit greyscale PNG (one label per pixel)".into());
    };
    let s = PARSING_SIZE as u32;
    if gray.dimensions() != (s, s) {
        return Err(format!(
            "must be {s}×{s} (BiSeNet's input), got {}×{}",
            gray.width(),
            gray.height()
        ));
    }
    let labels = gray.into_raw();
    if let Some(bad) = labels.iter().find(|&&v| usize::from(v) >= CLASSES.len()) {
        return Err(format!(
            "value {bad} is not a BiSeNet class (0 to {})",
            CLASSES.len() - 1
        ));
    }
    Ok(labels)
}

/// Validates a creation body and stores the job (status `starting`). Nothing is queued
/// unless every check passes.
pub async fn accept(
    state: &Arc<AppState>,
    owner: &str,
    model: String,
    body: &Value,
) -> Result<Record, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    };
    let version = match object.get("version") {
        None | Some(Value::Null) => "latest".to_string(),
        Some(Value::String(v)) if v.chars().count() <= 128 => v.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "version",
                "must be a string of at most 128 characters",
            ));
        }
    };
    let raw = object
        .get("input")
        .ok_or_else(|| ApiError::field("input", "is required"))?;
    let mut input = PredictionInput::from_json(raw).map_err(ApiError::fields)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let request = match input.to_request() {
        Ok(r) => match r.validate() {
            Ok((r, _)) => Some(r),
            Err(consistentid_core::Error::InvalidFields(f)) => {
                errors.extend(f);
                None
            }
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
        },
        Err(f) => {
            errors.extend(f);
            None
        }
    };
    if input.face_image.is_none() {
        errors.push(FieldError::new(
            "face_image",
            "is required (a data URI or the URL of an uploaded file)",
        ));
    }
    if let Some(values) = &input.id_embedding {
        if values.len() != ID_DIM {
            errors.push(FieldError::new(
                "id_embedding",
                format!("must have {ID_DIM} numbers, got {}", values.len()),
            ));
        } else if values.iter().any(|v| !v.is_finite()) {
            errors.push(FieldError::new("id_embedding", "must be finite numbers"));
        }
    }
    if let Some(b) = &input.face_box {
        if input.id_embedding.is_some() {
            errors.push(FieldError::new(
                "face_box",
                "picks one of the detected faces; with id_embedding no face is detected",
            ));
        } else if let Err(m) = check_box(b) {
            errors.push(FieldError::new("face_box", m));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let request = request.ok_or_else(|| ApiError::bad_request("invalid request"))?;
    if state.store.count_queued()? >= state.args.queue_size {
        return Err(ApiError::too_many(
            format!(
                "the queue is full ({} jobs waiting); try again shortly",
                state.args.queue_size
            ),
            30,
        ));
    }
    let limit = state.args.max_upload_mb * 1024 * 1024;

    // The face: decoded fully now, so a bad image never reaches the queue.
    let face_text = input.face_image.clone().unwrap_or_default();
    let (face_bytes, face_file) = resolve_file(state, owner, &face_text, "face_image", limit)?;
    let face_bytes = Arc::new(face_bytes);
    let (width, height) = check_image(face_bytes.clone(), "face_image").await?;
    if let Some(b) = input.face_box
        && (b[0] >= width as f32 || b[1] >= height as f32)
    {
        return Err(ApiError::field(
            "face_box",
            format!(
                "the box starts at ({}, {}), outside the {width}×{height} photo",
                b[0], b[1]
            ),
        ));
    }
    let content_type = image_type(&face_bytes)
        .ok_or_else(|| ApiError::field("face_image", "not a PNG, JPEG or WebP image"))?;

    // The browser's label map.
    let parsing = match &input.face_parsing {
        Some(text) => {
            let (bytes, _) = resolve_file(state, owner, text, "face_parsing", limit)?;
            decode_label_map(&bytes).map_err(|m| ApiError::field("face_parsing", m))?;
            Some(bytes)
        }
        None => None,
    };

    let id = new_id();
    let face_file = match face_file {
        Some(f) => f,
        None => state
            .store
            .add_file(&face_bytes, owner, "face", content_type, "upload", None)?,
    };
    state.store.attach_file(&face_file.id, &id)?;
    input.face_image = Some(format!("{}/v1/files/{}", state.base, face_file.id));
    if let Some(bytes) = parsing {
        let f = state.store.add_file(
            &bytes,
            owner,
            "face_parsing.png",
            "image/png",
            "upload",
            Some(&id),
        )?;
        input.face_parsing = Some(format!("{}/v1/files/{}", state.base, f.id));
    }
    input.seed = Some(
        request
            .seed
            .unwrap_or_else(crate::commands::generate::random_seed),
    );
    let record = Record {
        seq: 0,
        id,
        owner: owner.to_string(),
        model,
        version,
        status: Status::Starting,
        keep_face: input.keep_face.unwrap_or(false),
        input,
        face_file: Some(face_file.id),
        outputs: Vec::new(),
        error: None,
        logs: String::new(),
        metrics: Default::default(),
        created_at: now(),
        started_at: None,
        completed_at: None,
        attempts: 0,
    };
    // The stream's first event, before the worker can see the job.
    let ahead = state.store.count_queued()?;
    state.hub.send(
        &record.id,
        consistentid_core::api::StreamEvent::Status(consistentid_core::api::StatusEvent {
            status: Status::Starting,
            queue_position: Some(ahead),
        }),
    );
    let seq = state.store.insert(&record)?;
    Ok(Record { seq, ..record })
}

/// The engine's job for a stored prediction (checked again: the files may have gone).
pub fn build_job(state: &AppState, record: &Record) -> Result<(FaceJob, Vec<String>), String> {
    let input = &record.input;
    let request = input.to_request().map_err(|f| FieldError::join(&f))?;
    let (request, warnings) = request.validate().map_err(|e| e.to_string())?;
    let face_file = record
        .face_file
        .as_deref()
        .and_then(|id| state.store.file(id).ok().flatten())
        .ok_or("the face image is no longer stored")?;
    let bytes = state
        .store
        .read_blob(&face_file)
        .map_err(|e| e.to_string())?;
    let face = decode(&bytes, "face_image").map_err(|e| e.to_string())?;
    let face_parsing = match input.face_parsing.as_deref().and_then(file_id_of) {
        Some(id) => {
            let f = state
                .store
                .file(id)
                .ok()
                .flatten()
                .ok_or("the face parsing is no longer stored")?;
            let bytes = state.store.read_blob(&f).map_err(|e| e.to_string())?;
            Some(decode_label_map(&bytes)?)
        }
        None => None,
    };
    let identity = match &input.id_embedding {
        Some(values) => IdentitySource::Embedding(values.clone()),
        None => IdentitySource::Detect {
            choice: input
                .face_box
                .map_or(FaceChoice::BestScore, FaceChoice::Overlapping),
            allow_no_face: false,
        },
    };
    Ok((
        FaceJob {
            request,
            face,
            face_name: face_file.name,
            identity,
            face_parsing,
        },
        warnings,
    ))
}
