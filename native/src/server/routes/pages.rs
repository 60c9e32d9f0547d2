//! The web app on the API's origin (`/`, `/p/{id}`, `/s/{share_id}` with link-preview meta
//! tags filled in by the host, its static files), `/v1/health`, `/v1/shares/{id}` and the
//! OpenAPI document.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use consistentid_core::api::{Health, Problem, ShareView};

use super::{base_url, json};
use crate::server::AppState;
use crate::server::ids::is_id;
use crate::server::problem::ApiError;
use crate::server::views;

#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    json(StatusCode::OK, &state.health().await)
}

/// The Prometheus exposition (`text/plain; version=0.0.4`).
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let h = state.health().await;
    // An API process counts the workers it hears from; a worker (or one machine) itself.
    let workers: Vec<(String, bool)> = match state.args.role {
        crate::server::Role::Api => h
            .workers
            .iter()
            .map(|w| (w.device.clone(), w.status == "ready"))
            .collect(),
        _ => vec![(h.device, h.status == "ready" || h.status == "degraded")],
    };
    let text = state
        .metrics
        .render(h.queue_length, h.queue_capacity, &workers);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub async fn openapi() -> Response {
    json(StatusCode::OK, &crate::server::openapi::document())
}

/// A share: the prediction's images and parameters, never its face unless the owner chose.
async fn share_view(state: &AppState, base: &str, share_id: &str) -> Result<ShareView, ApiError> {
    if !is_id(share_id) {
        return Err(ApiError::not_found("share"));
    }
    let (prediction, include_face) = state
        .store
        .share(share_id)
        .await?
        .ok_or_else(|| ApiError::not_found("share"))?;
    let record = state
        .store
        .get(&prediction)
        .await?
        .ok_or_else(|| ApiError::not_found("share"))?;
    Ok(views::share(base, share_id, &record, include_face))
}

#[utoipa::path(get, path = "/v1/shares/{share_id}", params(("share_id" = String, Path)),
    responses((status = 200, body = ShareView),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn share_json(
    State(state): State<Arc<AppState>>,
    Path(share_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(&state, &headers);
    Ok(json(
        StatusCode::OK,
        &share_view(&state, &base, &share_id).await?,
    ))
}

pub fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// `/s/{share_id}`: the app with OpenGraph / Twitter tags, or a plain page of the images
/// when the app is not built.
pub async fn share_page(
    State(state): State<Arc<AppState>>,
    Path(share_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&state, &headers);
    let view = match share_view(&state, &base, &share_id).await {
        Ok(v) => v,
        Err(e) => {
            return (
                e.status,
                Html(page(
                    "Not found",
                    "<p>This share link does not exist or was revoked.</p>",
                )),
            )
                .into_response();
        }
    };
    let prompt = view.input.prompt.clone().unwrap_or_default();
    let title = "A ConsistentID portrait";
    let mut meta = format!(
        "<meta property=\"og:type\" content=\"website\">\n<meta property=\"og:title\" content=\"{title}\">\n<meta property=\"og:description\" content=\"{}\">\n<meta property=\"og:url\" content=\"{}\">\n<meta name=\"twitter:card\" content=\"summary_large_image\">\n<meta name=\"twitter:title\" content=\"{title}\">\n<meta name=\"twitter:description\" content=\"{}\">\n",
        escape(&prompt),
        escape(&view.url),
        escape(&prompt)
    );
    if let Some(image) = view.output.first() {
        meta.push_str(&format!(
            "<meta property=\"og:image\" content=\"{0}\">\n<meta name=\"twitter:image\" content=\"{0}\">\n",
            escape(image)
        ));
    }
    match app_index(&state) {
        Some(html) => Html(inject_head(&html, &meta)).into_response(),
        None => {
            let mut body = format!("<h1>{title}</h1><p>{}</p>", escape(&prompt));
            for (i, url) in view.output.iter().enumerate() {
                body.push_str(&format!(
                    "<p><img src=\"{}\" alt=\"generated portrait\" style=\"max-width:100%\"></p>",
                    escape(url)
                ));
                if let Some(s) = view.output_metadata.get(i).and_then(|m| m.face_similarity) {
                    body.push_str(&format!("<p class=\"likeness\">Identity match {s:.2}</p>"));
                }
            }
            let params = serde_json::to_string_pretty(&view.input).unwrap_or_default();
            body.push_str(&format!("<pre>{}</pre>", escape(&params)));
            Html(inject_head(&page(title, &body), &meta)).into_response()
        }
    }
}

fn inject_head(html: &str, meta: &str) -> String {
    match html.find("</head>") {
        Some(i) => format!("{}{meta}{}", &html[..i], &html[i..]),
        None => format!("{meta}{html}"),
    }
}

/// A small self-contained page (when the web app is not built).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head><body style=\"font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem\">{body}</body></html>\n",
        escape(title)
    )
}

fn app_index(state: &AppState) -> Option<String> {
    std::fs::read_to_string(state.web.as_ref()?.join("index.html")).ok()
}

fn not_built() -> String {
    page(
        "ConsistentID",
        "<h1>ConsistentID</h1><p>The host is running, but its web app was not built. Build it with <code>trunk build</code> (or <code>bash scripts/build.sh</code>) and restart, or pass <code>--web DIR</code>.</p><p>The API works without it: see <a href=\"/openapi.json\">/openapi.json</a> and <a href=\"/v1/health\">/v1/health</a>.</p>",
    )
}

/// A page of the app (core's `PAGES` but shares): the app, which routes on the client.
pub async fn app_page(State(state): State<Arc<AppState>>) -> Response {
    Html(app_index(&state).unwrap_or_else(not_built)).into_response()
}

fn content_type(path: &FsPath) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The app's files; anything else is a 404 problem. Paths are checked component by
/// component: no `..`, no hidden files, nothing outside the app's folder.
pub async fn static_file(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let not_found = || ApiError::not_found("page").into_response();
    let Some(root) = state.web.clone() else {
        return not_found();
    };
    let rel = uri.path().trim_start_matches('/');
    let mut path = PathBuf::from(&root);
    for part in FsPath::new(rel).components() {
        match part {
            Component::Normal(p) if !p.to_string_lossy().starts_with('.') => path.push(p),
            _ => return not_found(),
        }
    }
    if rel.is_empty() || !path.is_file() {
        return not_found();
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&path)),
            );
            r
        }
        Err(_) => not_found(),
    }
}
