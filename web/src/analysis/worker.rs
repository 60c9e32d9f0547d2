//! The analysis worker: this same wasm module, started by the page in a dedicated worker
//! (client.rs), where `main` lands here instead of mounting the app. It owns the models and the
//! device and runs each request (the analysis, the benchmark) off the page's thread.

use leptos::web_sys;
use wasm_bindgen::prelude::*;

use super::protocol::{Reply, Request};
use super::{analyse, bench, models};

/// Whether this thread is a dedicated worker (the analysis worker) rather than the page.
pub fn is_worker() -> bool {
    js_sys::global()
        .dyn_ref::<web_sys::DedicatedWorkerGlobalScope>()
        .is_some()
}

fn post(id: u32, reply: &Reply) {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let (message, transfer) = reply.to_js(id);
    let _ = scope.post_message_with_transfer(&message, &transfer);
}

/// Listens to the page; tells it when ready.
pub fn serve() {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|ev: web_sys::MessageEvent| {
            if let Some((id, request)) = Request::from_js(&ev.data()) {
                wasm_bindgen_futures::spawn_local(run(id, request));
            }
        });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as the page: so does its handler.
    on_message.forget();
    post(0, &Reply::Ready);
}

async fn run(id: u32, request: Request) {
    let reply = match request {
        Request::Preload => {
            // Nothing to say: the next request finds the models ready (or loads them again).
            let _ = models().await;
            return;
        }
        Request::Analyse(file) => {
            match analyse(&file, |text| post(id, &Reply::Status(text.into()))).await {
                Ok(Some(a)) => Reply::Analysed(Box::new(a)),
                Ok(None) => Reply::NoModels,
                Err(e) => Reply::Failed(e),
            }
        }
        Request::Bench(runs) => match bench::run(runs).await {
            Ok(result) => match serde_json::to_string_pretty(&result) {
                Ok(json) => Reply::Bench(json),
                Err(e) => Reply::Failed(e.to_string()),
            },
            Err(e) => Reply::Failed(e),
        },
    };
    post(id, &reply);
}
