//! The OpenAPI document: the host's description and security scheme here, its operations
//! from the route table (the handlers' annotations) and its schemas from core's API types.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::table;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ConsistentID host", description = "Identity-preserving portraits from one face photo. Replicate-compatible predictions, server-sent progress, share links."),
    components(schemas(
        consistentid_core::api::StatusEvent,
        consistentid_core::api::ProgressEvent,
        consistentid_core::api::PreviewEvent,
        consistentid_core::api::OutputEvent,
        consistentid_core::api::CandidatesEvent,
    )),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The document served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    table::document(ApiDoc::openapi())
}
