//! Predictions: create (with `Prefer: wait`), get, list, cancel, delete, share.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consistentid_core::api::{Prediction, PredictionPage, Problem, Share, Status};
use serde::Deserialize;
use serde_json::Value;

use super::{base_url, body_problem, json, keyed_owner, maybe_owner, owner, require_json};
use crate::server::AppState;
use crate::server::ids::is_id;
use crate::server::jobs;
use crate::server::problem::ApiError;
use crate::server::store::Record;
use crate::server::views;

/// The model name reported when none is given.
pub const DEFAULT_MODEL: &str = "consistentid/consistentid";
/// `Prefer: wait` holds a request at most this long (as Replicate).
const MAX_WAIT: u64 = 60;
const PAGE_SIZE: usize = 20;

/// The body of a creation request (documentation only; parsed field by field).
#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct CreatePrediction {
    /// Any model version string; reported back.
    pub version: Option<String>,
    pub input: consistentid_core::api::PredictionInput,
}

#[utoipa::path(post, path = "/v1/predictions", request_body = CreatePrediction,
    params(("Prefer" = Option<String>, Header, description = "wait or wait=N: hold the request up to N seconds (at most 60)")),
    responses(
        (status = 201, description = "Accepted", body = Prediction),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    create_inner(state, headers, body, DEFAULT_MODEL.to_string()).await
}

#[utoipa::path(post, path = "/v1/models/{owner}/{name}/predictions", request_body = CreatePrediction,
    params(("owner" = String, Path), ("name" = String, Path),
        ("Prefer" = Option<String>, Header, description = "wait or wait=N")),
    responses(
        (status = 201, description = "Accepted", body = Prediction),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_for_model(
    State(state): State<Arc<AppState>>,
    Path((model_owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    if !ok(&model_owner) || !ok(&name) {
        return ApiError::not_found("model").into_response();
    }
    create_inner(state, headers, body, format!("{model_owner}/{name}")).await
}

async fn create_inner(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    model: String,
) -> Response {
    match create_checked(&state, &headers, body, model).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn create_checked(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    model: String,
) -> Result<Response, ApiError> {
    if state.is_draining() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the host is shutting down",
        ));
    }
    let health = state.health().await;
    if health.status == "failed" {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the models could not be loaded: {}", health.detail),
        ));
    }
    let owner = keyed_owner(state, headers)?;
    require_json(headers)?;
    let body = match body {
        Ok(b) => b,
        Err(e) => return Ok(body_problem(e.status(), e.body_text())),
    };
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let record = match jobs::accept(state, &owner, model, &value).await {
        Ok(r) => {
            state.metrics.created();
            tracing::Span::current().record("prediction_id", r.id.as_str());
            tracing::info!("prediction created");
            r
        }
        Err(e) => {
            state.metrics.refused();
            return Err(e);
        }
    };
    state.wake.notify();
    let record = match prefer_wait(headers) {
        Some(secs) => wait_for(state, &record.id, secs).await?,
        None => record,
    };
    let mut view = views::prediction(state, &base_url(state, headers), &record, true).await;
    if prefer_wait(headers).is_some() && !record.status.is_terminal() {
        // As Replicate: an answer that stops waiting says `starting`, so clients poll.
        view.status = Status::Starting;
    }
    let mut response = json(StatusCode::CREATED, &view);
    if let Ok(url) = HeaderValue::from_str(&view.urls.get) {
        response.headers_mut().insert(header::LOCATION, url);
    }
    Ok(response)
}

/// `Prefer: wait` (60 s) or `wait=N`.
fn prefer_wait(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("prefer")?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let part = part.trim();
        if part == "wait" {
            Some(MAX_WAIT)
        } else {
            part.strip_prefix("wait=")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .map(|n| n.clamp(1, MAX_WAIT))
        }
    })
}

/// Waits until the prediction ends or `secs` pass.
async fn wait_for(state: &Arc<AppState>, id: &str, secs: u64) -> Result<Record, ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let channel = state.hub.channel(id).await;
    let mut changes = channel.subscribe();
    let mut stop = state.stop.subscribe();
    let mut ended: Option<tokio::time::Instant> = None;
    loop {
        let record = state
            .store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::not_found("prediction"))?;
        // Ended, and its end done: the `completed` event goes out after the face is deleted
        // (a job that ran on another host sends it there: a short grace instead).
        let now = tokio::time::Instant::now();
        let done = record.status.is_terminal()
            && (channel.completed().is_some()
                || now - *ended.get_or_insert(now) >= Duration::from_secs(1));
        if done || now >= deadline || *stop.borrow() {
            return Ok(record);
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A prediction by id: the owner's, or (for anyone holding the id) its public view.
async fn find(state: &AppState, id: &str) -> Result<Record, ApiError> {
    if !is_id(id) {
        return Err(ApiError::not_found("prediction"));
    }
    state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("prediction"))
}

/// The owner's prediction (404 for anyone else: ids are not confirmed to strangers).
async fn find_owned(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Record, ApiError> {
    let owner = owner(headers)?;
    let record = find(state, id).await?;
    if record.owner != owner {
        return Err(ApiError::not_found("prediction"));
    }
    Ok(record)
}

#[utoipa::path(get, path = "/v1/predictions/{id}", params(("id" = String, Path)),
    responses((status = 200, body = Prediction),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = find(&state, &id).await?;
    let is_owner = maybe_owner(&headers).is_some_and(|o| o == record.owner);
    let view = views::prediction(&state, &base_url(&state, &headers), &record, is_owner).await;
    Ok(json(StatusCode::OK, &view))
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/predictions", params(("cursor" = Option<String>, Query)),
    responses((status = 200, body = PredictionPage),
        (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = owner(&headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let before = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("bad cursor"))?,
        ),
    };
    let records = state.store.list(&owner, before, PAGE_SIZE + 1).await?;
    let more = records.len() > PAGE_SIZE;
    let records = &records[..records.len().min(PAGE_SIZE)];
    let base = &base_url(&state, &headers);
    let next = (more)
        .then(|| {
            records
                .last()
                .map(|r| format!("{base}/v1/predictions?cursor={}", r.seq))
        })
        .flatten();
    let previous = match records.first() {
        Some(first) if before.is_some() && state.store.has_newer(&owner, first.seq).await? => {
            // The page before starts after the PAGE_SIZE newer ones.
            let newer = state.store.list(&owner, None, usize::MAX >> 1).await?;
            let idx = newer.iter().position(|r| r.seq == first.seq).unwrap_or(0);
            Some(match idx.checked_sub(PAGE_SIZE) {
                Some(0) | None => format!("{base}/v1/predictions"),
                Some(start) => format!("{base}/v1/predictions?cursor={}", newer[start - 1].seq),
            })
        }
        _ => None,
    };
    let mut results = Vec::with_capacity(records.len());
    for r in records {
        results.push(views::prediction(&state, base, r, true).await);
    }
    let page = PredictionPage {
        next,
        previous,
        results,
    };
    Ok(json(StatusCode::OK, &page))
}

#[utoipa::path(post, path = "/v1/predictions/{id}/cancel", params(("id" = String, Path)),
    responses((status = 200, body = Prediction),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = find_owned(&state, &headers, &id).await?;
    match record.status {
        Status::Starting => {
            if state.store.cancel_queued(&id).await? {
                crate::server::worker::finish_job(&state, &id).await;
                crate::server::worker::announce_queue(&state).await;
                let hub = state.hub.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    hub.forget(&id);
                });
            } else {
                // It started meanwhile: stop it at its next step.
                request_cancel(&state, &id).await;
            }
        }
        Status::Processing => request_cancel(&state, &id).await,
        _ => {}
    }
    let record = find(&state, &record.id).await?;
    let view = views::prediction(&state, &base_url(&state, &headers), &record, true).await;
    Ok(json(StatusCode::OK, &view))
}

/// Stops a running job at its next step: in this process at once, in another at its next
/// heartbeat.
async fn request_cancel(state: &AppState, id: &str) {
    state
        .cancel
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.to_string());
    let _ = state.store.request_cancel(id).await;
}

#[utoipa::path(delete, path = "/v1/predictions/{id}", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted with its images and shares"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = find_owned(&state, &headers, &id).await?;
    if !record.status.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the prediction is still running: cancel it first",
        ));
    }
    for file in state.store.delete(&id).await? {
        state.store.delete_file(&file).await?;
    }
    state.hub.forget(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The optional body of a share request.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ShareOptions {
    /// Show the uploaded face on the share page (only if it was kept with `keep_face`).
    #[serde(default)]
    pub include_face: bool,
}

#[utoipa::path(post, path = "/v1/predictions/{id}/share", params(("id" = String, Path)),
    request_body(content = Option<ShareOptions>),
    responses((status = 201, body = Share),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn share(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let record = find_owned(&state, &headers, &id).await?;
    let body = body.unwrap_or_default();
    let options: ShareOptions = if body.is_empty() {
        ShareOptions::default()
    } else {
        require_json(&headers)?;
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?
    };
    if record.status != Status::Succeeded {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "only a succeeded prediction can be shared",
        ));
    }
    let include_face = options.include_face && record.keep_face;
    let share_id = state.store.create_share(&id, include_face).await?;
    Ok(json(
        StatusCode::CREATED,
        &Share {
            url: format!("{}/s/{share_id}", base_url(&state, &headers)),
            share_id,
        },
    ))
}

#[utoipa::path(delete, path = "/v1/predictions/{id}/share", params(("id" = String, Path)),
    responses((status = 204, description = "Every share link of the prediction revoked"),
        (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub async fn unshare(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    find_owned(&state, &headers, &id).await?;
    state.store.delete_shares(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
