//! The host's API from the browser: the per-browser token, JSON calls that turn problem
//! details into messages, uploads, and the prediction's event stream. Types come from core,
//! so the page and the host cannot drift apart.

use consistentid_core::api::{
    FileObject, HostFaces, Prediction, PredictionInput, PredictionPage, Share, ShareView,
};
use leptos::web_sys;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

const TOKEN_KEY: &str = "consistentid-token";

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// This browser's token: 128 random bits, made once and kept in localStorage.
pub fn token() -> String {
    let storage = window().local_storage().ok().flatten();
    if let Some(t) = storage
        .as_ref()
        .and_then(|s| s.get_item(TOKEN_KEY).ok().flatten())
    {
        return t;
    }
    let mut bytes = [0u8; 16];
    if let Ok(crypto) = window().crypto() {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(s) = storage {
        let _ = s.set_item(TOKEN_KEY, &t);
    }
    t
}

/// The message of a failed call: the host's problem detail, or what went wrong on the way.
fn js_message(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "the host cannot be reached".into())
}

async fn call(
    method: &str,
    path: &str,
    body: Option<JsValue>,
    json: bool,
) -> Result<String, String> {
    let (status, text) = call_status(method, path, body, json).await?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(problem_detail(status, &text))
    }
}

/// The host's problem detail, or the bare status.
fn problem_detail(status: u16, text: &str) -> String {
    serde_json::from_str::<consistentid_core::api::Problem>(text)
        .map(|p| p.detail)
        .unwrap_or_else(|_| format!("the host answered {status}"))
}

/// A call's status and body (an error only when the host could not be reached).
async fn call_status(
    method: &str,
    path: &str,
    body: Option<JsValue>,
    json: bool,
) -> Result<(u16, String), String> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(js_message)?;
    headers
        .set("Authorization", &format!("Bearer {}", token()))
        .map_err(js_message)?;
    if json {
        headers
            .set("Content-Type", "application/json")
            .map_err(js_message)?;
    }
    init.set_headers(&headers);
    if let Some(b) = &body {
        init.set_body(b);
    }
    let request = web_sys::Request::new_with_str_and_init(path, &init).map_err(js_message)?;
    let response: web_sys::Response = JsFuture::from(window().fetch_with_request(&request))
        .await
        .map_err(js_message)?
        .unchecked_into();
    let text = JsFuture::from(response.text().map_err(js_message)?)
        .await
        .map_err(js_message)?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("unexpected answer from the host: {e}"))
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    parse(&call("GET", path, None, false).await?)
}

/// Uploads the face (`POST /v1/files`) under `name`; returns its URL on this host.
pub async fn upload(file: &web_sys::Blob, name: &str) -> Result<String, String> {
    let form = web_sys::FormData::new().map_err(js_message)?;
    form.append_with_blob_and_filename("content", file, name)
        .map_err(js_message)?;
    let text = call("POST", "/v1/files", Some(form.into()), false).await?;
    let file: FileObject = parse(&text)?;
    file.urls
        .get("get")
        .cloned()
        .ok_or_else(|| "the upload has no URL".to_string())
}

/// The faces the host's own detector finds in an uploaded photo (its URL on this host).
pub async fn host_faces(file_url: &str) -> Result<HostFaces, String> {
    let id = file_url
        .rsplit_once("/v1/files/")
        .map(|(_, id)| id)
        .ok_or_else(|| "the photo is not uploaded to this host".to_string())?;
    get(&format!("/v1/files/{id}/faces")).await
}

pub async fn create(input: &PredictionInput) -> Result<Prediction, String> {
    let body = serde_json::json!({ "input": input }).to_string();
    parse(
        &call(
            "POST",
            "/v1/predictions",
            Some(JsValue::from_str(&body)),
            true,
        )
        .await?,
    )
}

pub async fn cancel(id: &str) -> Result<Prediction, String> {
    parse(&call("POST", &format!("/v1/predictions/{id}/cancel"), None, false).await?)
}

pub async fn share(id: &str) -> Result<Share, String> {
    parse(&call("POST", &format!("/v1/predictions/{id}/share"), None, false).await?)
}

pub async fn prediction(id: &str) -> Result<Prediction, String> {
    get(&format!("/v1/predictions/{id}")).await
}

/// The prediction, or `None` when the host has no such prediction (404).
pub async fn find_prediction(id: &str) -> Result<Option<Prediction>, String> {
    let (status, text) = call_status("GET", &format!("/v1/predictions/{id}"), None, false).await?;
    match status {
        404 => Ok(None),
        200..300 => parse(&text).map(Some),
        _ => Err(problem_detail(status, &text)),
    }
}

pub async fn mine(cursor: Option<&str>) -> Result<PredictionPage, String> {
    get(cursor.unwrap_or("/v1/predictions")).await
}

pub async fn shared(share_id: &str) -> Result<ShareView, String> {
    get(&format!("/v1/shares/{share_id}")).await
}

/// The name [`events`] gives the stream's own failures (the browser's `error` event, which
/// shares its name with the host's): data `{"closed": true}` when the browser gave up, else
/// it is reconnecting.
pub const STREAM_LOST: &str = "stream-lost";

/// Opens the prediction's event stream; `on_event(name, json)` gets every event (the
/// browser reconnects by itself with `Last-Event-ID`). Closed after `completed`, or at the
/// first event after `open()` turns false.
pub fn events(
    id: &str,
    open: impl Fn() -> bool + 'static,
    on_event: impl Fn(&str, serde_json::Value) + 'static,
) {
    let Ok(source) = web_sys::EventSource::new(&format!("/v1/predictions/{id}/events")) else {
        return;
    };
    let on_event = std::rc::Rc::new(on_event);
    let open = std::rc::Rc::new(open);
    for name in [
        "status",
        "progress",
        "preview",
        "output",
        "candidates",
        "log",
        "error",
        "completed",
    ] {
        let handler = on_event.clone();
        let open = open.clone();
        let source2 = source.clone();
        let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
            // The page moved on (inside the app): nothing listens any more.
            if !open() {
                source2.close();
                return;
            }
            // The host's events carry data; the browser's own `error` (a lost stream) does not.
            let data = e
                .dyn_ref::<web_sys::MessageEvent>()
                .and_then(|m| m.data().as_string())
                .and_then(|d| serde_json::from_str(&d).ok());
            let Some(data) = data else {
                if name == "error" {
                    let closed = source2.ready_state() == web_sys::EventSource::CLOSED;
                    handler(STREAM_LOST, serde_json::json!({ "closed": closed }));
                }
                return;
            };
            if name == "completed" {
                source2.close();
            }
            handler(name, data);
        });
        let _ = source.add_event_listener_with_callback(name, closure.as_ref().unchecked_ref());
        // The stream lives until it completes or `open` says the page has gone.
        closure.forget();
    }
}

/// Copies text to the clipboard; whether it was copied (a page on plain HTTP away from
/// localhost has no clipboard access, and a browser may refuse).
pub async fn copy(text: &str) -> bool {
    let navigator = window().navigator();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")) else {
        return false;
    };
    let Ok(write) = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText")) else {
        return false;
    };
    let Some(write) = write.dyn_ref::<js_sys::Function>() else {
        return false;
    };
    match write.call1(&clipboard, &JsValue::from_str(text)) {
        Ok(promise) => match promise.dyn_into::<js_sys::Promise>() {
            Ok(p) => JsFuture::from(p).await.is_ok(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}
