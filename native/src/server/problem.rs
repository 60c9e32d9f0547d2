//! API errors as RFC 9457 problem details (`application/problem+json`), with a field-level
//! list for validation errors.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consistentid_core::api::Problem;
use consistentid_core::error::FieldError;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// 422 with one entry per bad field.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldError::new(field, message)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "send your token as `Authorization: Bearer <token>`",
        )
    }

    pub fn too_many(detail: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// 507: the data folder is full; the client may try again later.
    pub fn storage_full() -> Self {
        Self {
            retry_after: Some(60),
            ..Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the host's storage is full; nothing was stored, try again later",
            )
        }
    }

    /// 503: the database or the object store cannot be reached; the client may try again
    /// shortly.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the host's database or file storage cannot be reached; nothing was changed, try again shortly",
            )
        }
    }

    /// An unexpected failure: logged (without request data), answered with 500.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!("internal: {e}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the host's log)",
        )
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        if crate::server::store::is_full(&e) {
            return Self::storage_full();
        }
        if crate::server::store::is_unreachable(&e) {
            return Self::unavailable();
        }
        Self::internal(format!("{e:#}"))
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

/// A problem response with any status.
pub fn problem_response(
    status: StatusCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
) -> Response {
    let body = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
        errors,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = (status, json).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_response(self.status, self.detail, self.errors, self.retry_after)
    }
}
