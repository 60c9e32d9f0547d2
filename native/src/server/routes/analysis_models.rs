//! `GET /v1/analysis-models/{name}`: the small models the web app runs in the browser to
//! analyse a face before it is sent (BlazeFace finds the face, BiSeNet parses it), served from
//! the model folder so the browser parses with exactly the weights the host would use.
//!
//! Revalidated on every use (`Cache-Control: no-cache` with an `ETag` from the file's size and
//! time): the browser keeps its copy and downloads it again only when the folder changed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consistentid_core::api::ANALYSIS_MODELS;
use consistentid_core::face::blazeface::{BACK_MODEL_FOLDER_PATH, MODEL_FOLDER_PATH};
use consistentid_core::pipeline::consistentid::PARSING;

use crate::server::AppState;
use crate::server::problem::ApiError;

/// The file behind a public name, inside the model folder.
fn file_of(state: &AppState, name: &str) -> Option<PathBuf> {
    let rel = match name {
        "face_parsing.pth" => PARSING,
        "blazeface.onnx" => MODEL_FOLDER_PATH,
        "blazeface-back.onnx" => BACK_MODEL_FOLDER_PATH,
        _ => return None,
    };
    debug_assert!(ANALYSIS_MODELS.contains(&name));
    Some(state.args.model.join(rel))
}

pub async fn download(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = file_of(&state, &name).ok_or_else(|| ApiError::not_found("analysis model"))?;
    let missing = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "the model folder has no {name}: the browser cannot analyse faces, the host will \
                 (run `consistentid fetch` to add it)"
            ),
        )
    };
    let meta = tokio::fs::metadata(&path).await.map_err(|_| missing())?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let etag = format!("\"{:x}-{modified:x}\"", meta.len());
    let tag = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let cache = HeaderValue::from_static("no-cache");
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if unchanged {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    Ok((
        StatusCode::OK,
        [
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
        ],
        bytes,
    )
        .into_response())
}
