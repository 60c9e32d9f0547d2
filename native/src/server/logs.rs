//! The host's structured logs (`tracing`), one line per event on stderr: text for people, or
//! JSON for a log pipeline (`--log-format json`). Each request runs in a span with its
//! `request_id` (the client's `X-Request-Id` when it sends a sane one, else a new id, echoed in
//! the response), the route it matched and the prediction or file id in its path; each job in a
//! span with its `prediction_id` and `attempt`, inside its worker's `worker_id`. Never logged:
//! faces and images, tokens, prompts, share ids (they are capabilities), query strings.
//! `CONSISTENTID_LOG` filters (`info` by default, e.g. `debug` or `warn,consistentid=info`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// The header that carries a request's id both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// How the host writes its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `time LEVEL spans: message fields`, one line per event.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `message`, fields, `spans`).
    Json,
}

/// Installs the subscriber (once per process; later calls change nothing).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("CONSISTENTID_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// A client's request id when it is short and plain, else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| super::routes::is_plain(v, 64, b"-_."))
        .map(str::to_string)
        .unwrap_or_else(super::ids::new_id)
}

/// The id in a matched path's `{id}` segment and the field it goes to.
fn path_id(route: &str, path: &str) -> Option<(&'static str, String)> {
    let field = if route.starts_with("/v1/predictions/{id}") {
        "prediction_id"
    } else if route.starts_with("/v1/files/{id}") {
        "file_id"
    } else {
        return None;
    };
    let at = route.split('/').position(|s| s == "{id}")?;
    let id = path.split('/').nth(at)?;
    super::ids::is_id(id).then(|| (field, id.to_string()))
}

/// The request span and its closing line (status, milliseconds). Probes (`/v1/health`,
/// `/metrics`) and the app's files are logged at debug, everything else at info.
pub async fn request(request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let quiet = route
        .as_deref()
        .is_none_or(|r| r == "/v1/health" || r == "/metrics");
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = route.as_deref().unwrap_or("(static)"),
        prediction_id = tracing::field::Empty,
        file_id = tracing::field::Empty,
    );
    if let Some((field, value)) = route
        .as_deref()
        .and_then(|r| path_id(r, request.uri().path()))
    {
        span.record(field, value.as_str());
    }
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    span.in_scope(|| {
        if quiet && status < 400 {
            tracing::debug!(status, ms, "answered");
        } else if status >= 500 {
            tracing::warn!(status, ms, "answered");
        } else {
            tracing::info!(status, ms, "answered");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_go_to_their_fields() {
        let id = super::super::ids::new_id();
        assert_eq!(
            path_id(
                "/v1/predictions/{id}/events",
                &format!("/v1/predictions/{id}/events")
            ),
            Some(("prediction_id", id.clone()))
        );
        assert_eq!(
            path_id("/v1/files/{id}", &format!("/v1/files/{id}")),
            Some(("file_id", id))
        );
        assert_eq!(path_id("/s/{share_id}", "/s/abc"), None);
        assert_eq!(
            path_id("/v1/predictions/{id}", "/v1/predictions/..%2f"),
            None
        );
    }
}
