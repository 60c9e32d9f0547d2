//! From a request body to a queued job, and from a stored job to the engine's input. Every
//! check happens at submission, before anything is queued: the fields, the face image (header
//! limits, then a full decode), the label map, the identity embedding.
//!
//! Decoding is bounded: a face photo may have at most [`MAX_FACE_PIXELS`] pixels (checked from
//! the header, before any pixel is decoded), and at most [`DECODES`] decodes run at once, so a
//! burst of small files that decode huge cannot exhaust the host's memory.

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
use super::views;
use crate::io::image::decode;

/// The most pixels the host decodes for a face photo: 4096 × 4096 (a 12-megapixel phone
/// photo fits; the web app sends at most 1536 px a side). A decode holds up to 11 bytes a
/// pixel (16-bit RGBA, then 8-bit RGB): at most about 185 MB.
pub const MAX_FACE_PIXELS: u64 = 4096 * 4096;
/// Decodes running at once; others wait their turn.
pub const DECODES: usize = 2;
pub static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DECODES);

/// Content types accepted for images.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        image::ImageFormat::Png => Some("image/png"),
        image::ImageFormat::Jpeg => Some("image/jpeg"),
        image::ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// Checks an image fully (header limits and the host's pixel limit, then a decode, at most
/// [`DECODES`] at once) off the async threads; its size as decoded (EXIF orientation applied).
pub async fn check_image(
    bytes: Arc<Vec<u8>>,
    field: &'static str,
) -> Result<(usize, usize), ApiError> {
    let header =
        check_header(&bytes, field).map_err(|e| ApiError::field(field, image_message(&e)))?;
    let (w, h) = (header.width, header.height);
    if u64::from(w) * u64::from(h) > MAX_FACE_PIXELS {
        return Err(ApiError::field(
            field,
            format!(
                "{w}x{h} pixels is more than this host decodes for a face photo ({:.1} megapixels, e.g. 4096x4096); scale it down (the web app sends at most 1536 pixels a side)",
                MAX_FACE_PIXELS as f64 / 1e6
            ),
        ));
    }
    let _permit = DECODING.acquire().await.map_err(ApiError::internal)?;
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

/// The file id in a URL or path of this host (`…/v1/files/{id}`).
pub fn file_id_of(url: &str) -> Option<&str> {
    let id = url.rsplit_once("/v1/files/")?.1;
    is_id(id).then_some(id)
}

/// An image given as a data URI or the URL of the owner's upload: (bytes, file record if
/// already stored).
pub(super) async fn resolve_file(
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
    match state.store.file(id).await? {
        Some(f) if f.owner == owner && f.kind == "upload" => {
            let bytes = state.store.read_blob(&f).await?;
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
    for field in ["webhook", "webhook_events_filter"] {
        if object.get(field).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::field(
                field,
                "webhooks are not supported by this host: follow the prediction's event stream (urls.stream) or poll urls.get",
            ));
        }
    }
    let raw = object
        .get("input")
        .ok_or_else(|| ApiError::field("input", "is required"))?;
    let mut input = PredictionInput::from_json(raw).map_err(ApiError::fields)?;
    let mut errors: Vec<FieldError> = Vec::new();
    let mut warnings = Vec::new();
    let request = match input.to_request() {
        Ok(r) => match r.validate() {
            Ok((r, w)) => {
                warnings = w;
                Some(r)
            }
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
    let steps = request.as_ref().map_or(50, |r| r.num_inference_steps);
    errors.extend(super::photo::field_errors(&input, steps, &state.args.model));
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
        } else if let Err(m) = embedding_norm(values) {
            errors.push(FieldError::new("id_embedding", m));
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
    let capacity = state.args.queue_size;
    let per_owner = super::owner_share(&state.args);
    if state.store.count_queued().await? >= capacity {
        return Err(queue_full(capacity));
    }
    if state.store.count_queued_of(owner).await? >= per_owner {
        return Err(owner_full(per_owner));
    }
    super::check_storage(state)?;
    let limit = state.args.max_upload_mb * 1024 * 1024;

    // The face: decoded fully now, so a bad image never reaches the queue.
    let face_text = input.face_image.clone().unwrap_or_default();
    let (face_bytes, face_upload) =
        resolve_file(state, owner, &face_text, "face_image", limit).await?;
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
    let photo_files = super::photo::check_files(state, owner, &input, limit).await?;

    // The browser's label map.
    let parsing = match &input.face_parsing {
        Some(text) => {
            let (bytes, upload) = resolve_file(state, owner, text, "face_parsing", limit).await?;
            decode_label_map(&bytes).map_err(|m| ApiError::field("face_parsing", m))?;
            Some((bytes, upload))
        }
        None => None,
    };

    // The prediction's own references to the face and the label map: an upload may serve
    // several predictions, and each deletes only its own when it ends; the upload goes when
    // none of them still waits or runs.
    let id = new_id();
    let face_name = face_upload.as_ref().map_or("face", |f| f.name.as_str());
    let face_file = state
        .store
        .add_file(
            &face_bytes,
            owner,
            face_name,
            content_type,
            "upload",
            Some(&id),
        )
        .await?;
    if let Some(u) = &face_upload {
        state.store.set_source(&face_file.id, &u.id).await?;
    }
    input.face_image = Some(views::file_path(&face_file.id));
    if let Some((bytes, upload)) = parsing {
        let f = state
            .store
            .add_file(
                &bytes,
                owner,
                "face_parsing.png",
                "image/png",
                "upload",
                Some(&id),
            )
            .await?;
        if let Some(u) = &upload {
            state.store.set_source(&f.id, &u.id).await?;
        }
        input.face_parsing = Some(views::file_path(&f.id));
    }
    super::photo::store(state, owner, &id, &mut input, photo_files).await?;
    input.seed = Some(request.seed.unwrap_or_else(crate::models::random_seed));
    if let Some(values) = &input.id_embedding {
        warnings.extend(embedding_warnings(values));
    }
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
        output_metadata: Vec::new(),
        candidates: None,
        error: None,
        // What is knowable now, readable before the job runs (the worker writes them again).
        logs: warnings.iter().map(|w| format!("warning: {w}\n")).collect(),
        metrics: Default::default(),
        created_at: now(),
        started_at: None,
        completed_at: None,
        attempts: 0,
    };
    // The stream's first event, before the worker can see the job.
    let ahead = state.store.count_queued().await?;
    state
        .hub
        .send(
            &record.id,
            consistentid_core::api::StreamEvent::Status(consistentid_core::api::StatusEvent {
                status: Status::Starting,
                queue_position: Some(ahead),
            }),
        )
        .await;
    // The queue's bound is checked again in the insert itself: of racing requests for the
    // last places, only as many as fit are stored.
    match state
        .store
        .insert_if_room(&record, capacity, per_owner)
        .await
    {
        Ok(Some(seq)) => Ok(Record { seq, ..record }),
        refused => {
            state.hub.forget(&record.id);
            if let Ok(files) = state.store.delete(&record.id).await {
                for f in files {
                    let _ = state.store.delete_file(&f).await;
                }
            }
            match refused {
                Err(e) => Err(e.into()),
                _ if state.store.count_queued_of(owner).await? >= per_owner => {
                    Err(owner_full(per_owner))
                }
                _ => Err(queue_full(capacity)),
            }
        }
    }
}

fn owner_full(per_owner: usize) -> ApiError {
    ApiError::too_many(
        format!(
            "you have {per_owner} jobs waiting, your share of the queue; try again when one has started"
        ),
        30,
    )
}

/// The largest norm an identity embedding may have: ArcFace's `normed_embedding` (what the
/// official pipeline uses) has norm 1, its raw embedding about 20 to 30.
const MAX_EMBEDDING_NORM: f64 = 1000.0;

/// The L2 norm of an identity embedding, or why it is refused (absurdly large).
fn embedding_norm(values: &[f32]) -> Result<f64, String> {
    let norm = values
        .iter()
        .map(|v| f64::from(*v) * f64::from(*v))
        .sum::<f64>()
        .sqrt();
    if norm > MAX_EMBEDDING_NORM {
        return Err(format!(
            "has norm {norm:.3e}; an ArcFace identity (normed_embedding) has norm 1"
        ));
    }
    Ok(norm)
}

/// Warnings about an identity embedding that is accepted but unlike ArcFace's.
pub fn embedding_warnings(values: &[f32]) -> Vec<String> {
    match embedding_norm(values) {
        Ok(0.0) => vec![
            "id_embedding is all zeros: no identity is applied (as the official pipeline does when it finds no face)".into(),
        ],
        Ok(norm) if !(0.5..=2.0).contains(&norm) => vec![format!(
            "id_embedding has norm {norm:.3}; ArcFace's normed_embedding has norm 1, so the face may not resemble anyone"
        )],
        _ => Vec::new(),
    }
}

fn queue_full(capacity: usize) -> ApiError {
    ApiError::too_many(
        format!("the queue is full ({capacity} jobs waiting); try again shortly"),
        30,
    )
}

/// Why a stored prediction cannot be run now.
#[derive(Debug)]
pub enum NotRunnable {
    /// It never will: it fails with this reason.
    Invalid(String),
    /// Its files cannot be read now (the object store is away): it waits in the queue.
    Unavailable(String),
}

impl From<String> for NotRunnable {
    fn from(reason: String) -> Self {
        NotRunnable::Invalid(reason)
    }
}

impl From<&str> for NotRunnable {
    fn from(reason: &str) -> Self {
        NotRunnable::Invalid(reason.to_string())
    }
}

fn blob_error(e: anyhow::Error) -> NotRunnable {
    if crate::server::store::is_unreachable(&e) {
        NotRunnable::Unavailable(format!("{e:#}"))
    } else {
        NotRunnable::Invalid(e.to_string())
    }
}

/// The engine's job for a stored prediction (checked again: the files may have gone).
pub async fn build_job(
    state: &AppState,
    record: &Record,
) -> Result<(FaceJob, Vec<String>), NotRunnable> {
    let input = &record.input;
    let request = input.to_request().map_err(|f| FieldError::join(&f))?;
    let (request, mut warnings) = request.validate().map_err(|e| e.to_string())?;
    if let Some(values) = &input.id_embedding {
        warnings.extend(embedding_warnings(values));
    }
    let face_file = match record.face_file.as_deref() {
        Some(id) => state.store.file(id).await.ok().flatten(),
        None => None,
    }
    .ok_or("the face image is no longer stored")?;
    let bytes = state
        .store
        .read_blob(&face_file)
        .await
        .map_err(blob_error)?;
    let face = decode(&bytes, "face_image").map_err(|e| e.to_string())?;
    let face_parsing = match input.face_parsing.as_deref().and_then(file_id_of) {
        Some(id) => {
            let f = state
                .store
                .file(id)
                .await
                .ok()
                .flatten()
                .ok_or("the face parsing is no longer stored")?;
            let bytes = state.store.read_blob(&f).await.map_err(blob_error)?;
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
            photo: None,
        },
        warnings,
    ))
}
