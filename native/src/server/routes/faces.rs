//! `GET /v1/files/{id}/faces`: the host's face detector on one of the caller's uploads. The
//! web app asks when its in-browser detector (BlazeFace) finds fewer faces than the person
//! sees: SCRFD, the detector the job itself uses, then offers its faces to choose from, and
//! the chosen box goes into the prediction's `face_box`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use burn::tensor::Device;
use consistentid_core::api::{HostFace, HostFaces, MAX_HOST_FACES, Problem};
use consistentid_core::face::ChannelOrder;
use consistentid_core::face::analysis::{DETECTOR, FaceAnalysis};
use consistentid_core::face::scrfd::Scrfd;
use consistentid_core::onnx::OnnxModel;
use consistentid_core::weights::WeightSource;

use super::files::owned_file;
use super::{json, owner};
use crate::io::image::decode;
use crate::server::AppState;
use crate::server::jobs::DECODING;
use crate::server::problem::ApiError;
use crate::source::DirSource;

/// The detector, loaded from the model folder on first use (on the CPU: one photo is quick).
/// A failure is not kept: the folder may still be arriving (`serve` fetches it at start).
pub fn detector(state: &AppState) -> Result<Arc<Scrfd>, String> {
    if let Some(d) = state.detector.get() {
        return Ok(d.clone());
    }
    let source = DirSource::open(&state.args.model).map_err(|e| format!("{e:#}"))?;
    let path = FaceAnalysis::find_file(&source, DETECTOR).ok_or_else(|| {
        "the host has no face detector (buffalo_l's det_10g.onnx) in its model folder".to_string()
    })?;
    let bytes = source.read(&path).map_err(|e| e.to_string())?;
    let model = OnnxModel::parse(&bytes, &source.display_path(&path)).map_err(|e| e.to_string())?;
    let mut scrfd = Scrfd::new(model, &Device::flex()).map_err(|e| e.to_string())?;
    scrfd.channel_order = ChannelOrder::Official;
    Ok(state.detector.get_or_init(|| Arc::new(scrfd)).clone())
}

#[utoipa::path(get, path = "/v1/files/{id}/faces", params(("id" = String, Path)),
    responses((status = 200, body = HostFaces),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn detect(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = owned_file(&state, &owner(&headers)?, &id).await?;
    let bytes = state.store.read_blob(&file).await?;
    let _permit = DECODING.acquire().await.map_err(ApiError::internal)?;
    let task_state = state.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<_>, ApiError> {
        let scrfd =
            detector(&task_state).map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e))?;
        let image = decode(&bytes, "face").map_err(|e| ApiError::field("face", e.to_string()))?;
        scrfd.detect(&image).map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)??;
    let faces = found
        .iter()
        .take(MAX_HOST_FACES)
        .map(|d| HostFace {
            bbox: d.bbox,
            score: d.score,
            landmarks: d.landmarks.clone(),
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &HostFaces {
            detector: "SCRFD (insightface buffalo_l det_10g)".into(),
            faces,
            found: found.len(),
        },
    ))
}
