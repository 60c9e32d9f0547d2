//! The OpenAPI document, generated from the handlers' annotations and the API types of core.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::{events, faces, files, pages, predictions};

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
    paths(
        predictions::create,
        predictions::create_for_model,
        predictions::get_one,
        predictions::list,
        predictions::cancel,
        predictions::delete,
        predictions::share,
        predictions::unshare,
        events::stream,
        files::upload,
        files::download,
        files::delete,
        faces::detect,
        pages::health,
        pages::share_json,
    ),
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
    ApiDoc::openapi()
}
