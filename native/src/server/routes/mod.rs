//! The HTTP routes: the API under /v1, the OpenAPI document, and the web app's pages on the
//! same origin.

pub mod analysis_models;
pub mod events;
pub mod faces;
pub mod files;
pub mod pages;
pub mod predictions;
pub mod table;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::AppState;
use super::ids::owner_of;
use super::problem::{ApiError, problem_response};

/// The whole application: every route of the table.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.args.max_upload_mb * 1024 * 1024;
    let api = table::router(|_| true, limit)
        .fallback(pages::static_file)
        .method_not_allowed_fallback(method_not_allowed);
    let mut app = api
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.args.body_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::security::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::security::headers,
        ))
        .layer(middleware::from_fn(super::logs::request));
    if !state.args.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = state
            .args
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::HeaderName::from_static("prefer"),
                ]),
        );
    }
    app.with_state(state)
}

/// A worker's port (`--role worker`): its health and counters for probes and Prometheus, and
/// nothing of the API (people reach the API processes).
pub fn probe_router(state: Arc<AppState>) -> Router {
    table::router(|a| a == table::Audience::Probe, 0)
        .fallback(not_here)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::security::headers,
        ))
        .layer(middleware::from_fn(super::logs::request))
        .with_state(state)
}

async fn not_here() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "this is a worker (--role worker): it answers /v1/health and /metrics; the API is on the API processes",
    )
    .into_response()
}

/// 405 as a problem, like every other error.
async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this method is not allowed here (see /openapi.json)",
    )
    .into_response()
}

/// The base URL of this request: `--public-url`, else the host the client addressed
/// (`Host`), so that pages opened at `localhost`, `127.0.0.1` or a LAN name get links that
/// work from there; the listening address when the header is missing or malformed.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if state.args.public_url.is_some() {
        return state.base.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| is_plain(h, 255, b".-:[]_"));
    match host {
        Some(h) => format!("http://{h}"),
        None => state.base.clone(),
    }
}

/// Whether a header's value is 1 to `max` ASCII letters, digits and `extra` characters.
pub fn is_plain(value: &str, max: usize, extra: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// The bearer token, if any (`Authorization: Bearer …`, or `Token …` as older clients send).
pub fn token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    let ok = (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        && !token.is_empty()
        && token.len() <= 512
        && token.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| token.to_string())
}

/// The caller's owner id (hashed token), required.
pub fn owner(headers: &HeaderMap) -> Result<String, ApiError> {
    token(headers)
        .map(|t| owner_of(&t))
        .ok_or_else(ApiError::unauthorized)
}

/// The caller's owner id, which must be one of the `--api-key`s when the host has any (for
/// everything that stores: predictions and uploads).
pub fn keyed_owner(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let owner = owner(headers)?;
    if !state.api_keys.is_empty() && !state.api_keys.contains(&owner) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this host only accepts predictions and uploads from its API keys",
        ));
    }
    Ok(owner)
}

/// The caller's owner id, if they sent a token.
pub fn maybe_owner(headers: &HeaderMap) -> Option<String> {
    token(headers).map(|t| owner_of(&t))
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Requires `Content-Type: application/json` (415 otherwise).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ))
    }
}

/// A body-reading failure (too large, cut off) as a problem.
pub fn body_problem(status: StatusCode, text: String) -> Response {
    let (status, detail) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (status, "the request body is too large".to_string())
    } else if text.contains("timeout") || text.contains("timed out") {
        (
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time".to_string(),
        )
    } else {
        (status, text)
    };
    problem_response(status, detail, Vec::new(), None)
}
