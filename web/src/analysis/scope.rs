//! Where the analysis code runs: in the analysis worker (worker.rs), or on the page. The clock,
//! timers, `fetch` and image decoding exist in both global scopes under different types.

use leptos::web_sys;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::js_error;

/// The global scope.
pub enum Scope {
    Window(web_sys::Window),
    Worker(web_sys::WorkerGlobalScope),
}

/// This thread's global scope.
pub fn scope() -> Result<Scope, String> {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        return Ok(Scope::Window(w.clone()));
    }
    global
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .map(Scope::Worker)
        .map_err(|_| "neither a page nor a worker".to_string())
}

/// Milliseconds on the scope's clock.
pub fn now() -> f64 {
    let performance = match scope() {
        Ok(Scope::Window(w)) => w.performance(),
        Ok(Scope::Worker(w)) => w.performance(),
        Err(_) => None,
    };
    performance.map(|p| p.now()).unwrap_or_default()
}

/// Lets the event loop run (rendering on the page, messages in the worker) before the next
/// heavy step.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = match scope() {
            Ok(Scope::Window(w)) => {
                w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
            }
            Ok(Scope::Worker(w)) => {
                w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
            }
            // No timer to wait for: go on at once.
            Err(_) => resolve.call0(&JsValue::NULL).map(|_| 0),
        };
    });
    let _ = JsFuture::from(promise).await;
}

/// `fetch(url)`; a path is on the page's host.
pub async fn fetch(url: &str) -> Result<web_sys::Response, String> {
    let promise = match scope()? {
        Scope::Window(w) => w.fetch_with_str(url),
        Scope::Worker(w) => {
            // The worker's own address is a blob: URL, against which no path resolves; its
            // origin is the page's.
            let location = js_sys::Reflect::get(&w, &"location".into()).map_err(js_error)?;
            let origin = js_sys::Reflect::get(&location, &"origin".into())
                .map_err(js_error)?
                .as_string()
                .unwrap_or_default();
            let absolute = if url.starts_with('/') {
                format!("{origin}{url}")
            } else {
                url.to_string()
            };
            w.fetch_with_str(&absolute)
        }
    };
    Ok(JsFuture::from(promise)
        .await
        .map_err(js_error)?
        .unchecked_into())
}

/// `createImageBitmap(blob, options)`.
pub async fn create_image_bitmap(
    blob: &web_sys::Blob,
    options: &web_sys::ImageBitmapOptions,
) -> Result<web_sys::ImageBitmap, String> {
    let promise = match scope()? {
        Scope::Window(w) => w.create_image_bitmap_with_blob_and_image_bitmap_options(blob, options),
        Scope::Worker(w) => w.create_image_bitmap_with_blob_and_image_bitmap_options(blob, options),
    }
    .map_err(js_error)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(|_| "the browser cannot decode this file as an image".to_string())?
        .unchecked_into())
}
