//! Every route of the host in one table: it builds the API router, the worker's probe router
//! and the OpenAPI document, and serves the web app at the pages of core's `PAGES` (the
//! table the app routes by). A documented route takes its path and method from its handler's
//! `#[utoipa::path]`, so what is served and what is documented cannot differ.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{MethodFilter, MethodRouter, get, on};
use consistentid_core::api::{ANALYSIS_MODELS_PATH, PAGES, PageKind};
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

use super::{analysis_models, events, faces, files, pages, predictions};
use crate::server::AppState;

type Schemas = Vec<(String, RefOr<Schema>)>;

/// Who a route is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// The API and its documents (API processes and one machine).
    Api,
    /// Health and counters: also on a worker's port.
    Probe,
    /// A page of the web app (`PAGES`).
    Page,
}

/// How large a request body a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// axum's default (2 MiB): routes that read no body.
    Default,
    /// A JSON body with a data-URI face and a label map.
    Json,
    /// An uploaded file.
    Upload,
}

/// What the OpenAPI document says of one operation.
pub struct Doc {
    methods: Vec<HttpMethod>,
    operation: fn() -> Operation,
    schemas: fn(&mut Schemas),
}

/// One method (or several) of one path, and what answers it.
pub struct Entry {
    pub path: String,
    pub audience: Audience,
    pub body: Body,
    pub handler: MethodRouter<Arc<AppState>>,
    pub doc: Option<(&'static str, Doc)>,
}

fn filter(method: &HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

/// A documented API operation: path and method from `P`, the handler's `#[utoipa::path]`.
fn api<P, H, T>(tag: &'static str, body: Body, handler: H) -> Entry
where
    P: utoipa::Path + utoipa::__dev::SchemaReferences,
    H: Handler<T, Arc<AppState>>,
    T: 'static,
{
    let methods = P::methods();
    let any = methods
        .iter()
        .map(filter)
        .reduce(MethodFilter::or)
        .unwrap_or(MethodFilter::GET);
    Entry {
        path: P::path(),
        audience: Audience::Api,
        body,
        handler: on(any, handler),
        doc: Some((
            tag,
            Doc {
                methods,
                operation: P::operation,
                schemas: P::schemas,
            },
        )),
    }
}

/// A GET route the document leaves out (pages, files, counters).
fn plain<H, T>(path: &str, audience: Audience, handler: H) -> Entry
where
    H: Handler<T, Arc<AppState>>,
    T: 'static,
{
    Entry {
        path: path.to_string(),
        audience,
        body: Body::Default,
        handler: get(handler),
        doc: None,
    }
}

/// The table.
pub fn entries() -> Vec<Entry> {
    use predictions as p;
    let mut all = vec![
        api::<p::__path_create, _, _>("predictions", Body::Json, p::create),
        api::<p::__path_list, _, _>("predictions", Body::Default, p::list),
        api::<p::__path_create_for_model, _, _>("predictions", Body::Json, p::create_for_model),
        api::<p::__path_get_one, _, _>("predictions", Body::Default, p::get_one),
        api::<p::__path_delete, _, _>("predictions", Body::Default, p::delete),
        api::<p::__path_cancel, _, _>("predictions", Body::Json, p::cancel),
        api::<p::__path_share, _, _>("shares", Body::Json, p::share),
        api::<p::__path_unshare, _, _>("shares", Body::Default, p::unshare),
        api::<events::__path_stream, _, _>("predictions", Body::Default, events::stream),
        api::<pages::__path_share_json, _, _>("shares", Body::Default, pages::share_json),
        api::<files::__path_upload, _, _>("files", Body::Upload, files::upload),
        api::<files::__path_download, _, _>("files", Body::Default, files::download),
        api::<files::__path_delete, _, _>("files", Body::Default, files::delete),
        api::<faces::__path_detect, _, _>("files", Body::Default, faces::detect),
        plain(
            &format!("{ANALYSIS_MODELS_PATH}/{{name}}"),
            Audience::Api,
            analysis_models::download,
        ),
        plain("/openapi.json", Audience::Api, pages::openapi),
        plain("/metrics", Audience::Probe, pages::metrics),
    ];
    let mut health = api::<pages::__path_health, _, _>("host", Body::Default, pages::health);
    health.audience = Audience::Probe;
    all.push(health);
    for (path, kind) in PAGES {
        all.push(match kind {
            PageKind::Share => plain(path, Audience::Page, pages::share_page),
            _ => plain(path, Audience::Page, pages::app_page),
        });
    }
    all
}

/// The router of the entries `keep` admits; each path's methods merged into one route.
pub fn router(keep: impl Fn(Audience) -> bool, upload_limit: usize) -> axum::Router<Arc<AppState>> {
    // Room for a data-URI face (base64: 4/3 of the bytes) and a label map in one JSON body.
    let json_limit = upload_limit * 4 / 3 + 1024 * 1024;
    let mut paths: Vec<(String, MethodRouter<Arc<AppState>>)> = Vec::new();
    for e in entries().into_iter().filter(|e| keep(e.audience)) {
        let handler = match e.body {
            Body::Default => e.handler,
            Body::Json => e.handler.layer(DefaultBodyLimit::max(json_limit)),
            Body::Upload => e
                .handler
                .layer(DefaultBodyLimit::max(upload_limit + 64 * 1024)),
        };
        match paths.iter_mut().find(|(p, _)| *p == e.path) {
            Some((_, methods)) => *methods = std::mem::take(methods).merge(handler),
            None => paths.push((e.path, handler)),
        }
    }
    paths
        .into_iter()
        .fold(axum::Router::new(), |r, (path, methods)| {
            r.route(&path, methods)
        })
}

/// Adds the documented entries' operations and the schemas they name to `doc`.
pub fn document(mut doc: OpenApi) -> OpenApi {
    let mut schemas = Schemas::new();
    for e in entries() {
        let Some((tag, d)) = e.doc else { continue };
        let mut operation = (d.operation)();
        operation.tags = Some(vec![tag.to_string()]);
        doc.paths.add_path_operation(&e.path, d.methods, operation);
        (d.schemas)(&mut schemas);
    }
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_and_method_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for e in entries() {
            let methods: Vec<String> = match &e.doc {
                Some((_, d)) => d
                    .methods
                    .iter()
                    .map(|m| format!("{:?}", filter(m)))
                    .collect(),
                None => vec![format!("{:?}", MethodFilter::GET)],
            };
            for m in methods {
                assert!(
                    seen.insert((e.path.clone(), m.clone())),
                    "{m} {} twice",
                    e.path
                );
            }
        }
        for (path, _) in PAGES {
            let get = (path.to_string(), format!("{:?}", MethodFilter::GET));
            assert!(seen.contains(&get), "{path}");
        }
    }

    #[test]
    fn the_document_has_every_api_operation() {
        let doc = crate::server::openapi::document();
        let documented = entries().into_iter().filter(|e| e.doc.is_some()).count();
        let operations: usize = doc
            .paths
            .paths
            .values()
            .map(|item| {
                [&item.get, &item.post, &item.delete, &item.put, &item.patch]
                    .iter()
                    .filter(|o| o.is_some())
                    .count()
            })
            .sum();
        assert_eq!(operations, documented);
        assert!(doc.components.unwrap().schemas.contains_key("Prediction"));
    }
}
