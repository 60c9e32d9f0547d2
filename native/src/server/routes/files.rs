//! `POST /v1/files` (multipart, as Replicate's files API: the `content` part) and
//! `GET /v1/files/{id}`. Uploads must be PNG, JPEG or WebP images within the size and pixel
//! limits; they are readable only by their owner. Output images are readable by anyone
//! holding their URL (128-bit ids), so share pages and clients can show them.

use std::sync::Arc;

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consistentid_core::api::{FileObject, Problem};

use super::{base_url, body_problem, json, keyed_owner, maybe_owner, owner};
use crate::server::AppState;
use crate::server::ids::is_id;
use crate::server::jobs::{check_image, image_type};
use crate::server::problem::ApiError;
use crate::server::store::FileRecord;
use crate::server::views;

/// A display name for an uploaded file: its last path component, printable, at most 100
/// characters (never used as a path).
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(100).collect();
    if clean.trim().is_empty() {
        "upload".into()
    } else {
        clean
    }
}

#[utoipa::path(post, path = "/v1/files",
    request_body(content_type = "multipart/form-data", description = "the image in a part named `content`"),
    responses((status = 201, body = FileObject),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    // Uploads take disk space: in `--api-key` mode only the keys may store them.
    let owner = keyed_owner(&state, &headers)?;
    crate::server::check_storage(&state)?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the file as multipart/form-data in a part named `content` ({e})"),
        )
    })?;
    let limit = state.args.max_upload_mb * 1024 * 1024;
    let mut found = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Ok(body_problem(e.status(), e.body_text())),
        };
        if field.name() != Some("content") {
            continue;
        }
        let name = clean_name(field.file_name().unwrap_or("upload"));
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => return Ok(body_problem(e.status(), e.body_text())),
        };
        found = Some((name, bytes));
        break;
    }
    let Some((name, bytes)) = found else {
        return Err(ApiError::field(
            "content",
            "no part named `content` in the upload",
        ));
    };
    if bytes.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the file is {} bytes; at most {limit}", bytes.len()),
        ));
    }
    let Some(content_type) = image_type(&bytes) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "only PNG, JPEG and WebP images can be uploaded",
        ));
    };
    let bytes = Arc::new(bytes.to_vec());
    check_image(bytes.clone(), "content").await?;
    let file = state
        .store
        .add_file(&bytes, &owner, &name, content_type, "upload", None)
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &views::file(&base_url(&state, &headers), &file),
    ))
}

#[utoipa::path(get, path = "/v1/files/{id}", params(("id" = String, Path)),
    responses((status = 200, description = "The file (images: PNG with its `parameters`)", content_type = "image/png"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn download(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_id(&id) {
        return Err(ApiError::not_found("file"));
    }
    let file = state
        .store
        .file(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let visible = file.kind == "output"
        || maybe_owner(&headers).is_some_and(|o| o == file.owner)
        || state.store.face_shared(&file.id).await?;
    if !visible {
        return Err(ApiError::not_found("file"));
    }
    // Deleted since its record was read (a face released as its job ended): gone, as later.
    let bytes = state.store.read_blob(&file).await.map_err(|e| {
        if crate::server::store::is_missing(&e) {
            ApiError::not_found("file")
        } else {
            e.into()
        }
    })?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&file.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let ascii: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{ascii}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

/// The caller's file `id` (an upload or a face they kept); 404 for anyone else's.
pub async fn owned_file(state: &AppState, owner: &str, id: &str) -> Result<FileRecord, ApiError> {
    let file = match is_id(id) {
        true => state.store.file(id).await?,
        false => None,
    };
    file.filter(|f| f.owner == owner)
        .ok_or_else(|| ApiError::not_found("file"))
}

#[utoipa::path(delete, path = "/v1/files/{id}", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted (an upload of yours, or a face you kept)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = owned_file(&state, &owner(&headers)?, &id).await?;
    if file.kind != "upload" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "an output image goes with its prediction: DELETE /v1/predictions/{id}",
        ));
    }
    if let Some(prediction) = &file.prediction
        && state
            .store
            .get(prediction)
            .await?
            .is_some_and(|p| !p.status.is_terminal())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this face is used by a prediction that has not ended: cancel it first",
        ));
    }
    state.store.delete_file(&file.id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
