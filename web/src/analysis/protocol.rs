//! The messages between the page (client.rs) and the analysis worker (worker.rs): plain
//! JavaScript objects, the photo file as it is (browsers clone files), and the pixels and label
//! maps as byte arrays whose buffers are transferred, not copied.

use consistentid_core::face::Detection;
use consistentid_core::image::RgbImage;
use js_sys::{Array, Object, Reflect, Uint8Array};
use leptos::web_sys;
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};

use super::Analysis;

/// What the page asks of the worker.
pub enum Request {
    /// Load the models now, so that the first photo is faster.
    Preload,
    Analyse(web_sys::Blob),
    /// The benchmark with this many timed runs.
    Bench(usize),
}

/// What the worker answers; each answer but `Ready` names its request.
pub enum Reply {
    /// The worker listens (sent once, first).
    Ready,
    /// A step of the request has started.
    Status(String),
    Analysed(Box<Analysis>),
    /// The host serves no analysis models: it analyses the photo itself.
    NoModels,
    /// The benchmark's result as JSON.
    Bench(String),
    Failed(String),
}

/// `Analysis` without its byte arrays.
#[derive(Serialize, Deserialize)]
struct Meta {
    width: usize,
    height: usize,
    scaled_from: Option<(u32, u32)>,
    faces: Vec<Face>,
    backend: String,
    timings: Vec<(String, f64)>,
}

#[derive(Serialize, Deserialize)]
struct Face {
    bbox: [f32; 4],
    score: f32,
    landmarks: Vec<[f32; 2]>,
}

fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &key.into(), value);
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn message(id: u32, kind: &str) -> Object {
    let o = Object::new();
    set(&o, "id", &id.into());
    set(&o, "kind", &kind.into());
    o
}

fn id_and_kind(v: &JsValue) -> Option<(u32, String)> {
    let id = get(v, "id").as_f64().unwrap_or_default() as u32;
    Some((id, get(v, "kind").as_string()?))
}

fn bytes(v: &JsValue, key: &str) -> Vec<u8> {
    get(v, key)
        .dyn_into::<Uint8Array>()
        .map(|a| a.to_vec())
        .unwrap_or_default()
}

impl Request {
    pub fn to_js(&self, id: u32) -> JsValue {
        match self {
            Request::Preload => message(id, "preload"),
            Request::Analyse(file) => {
                let o = message(id, "analyse");
                set(&o, "file", file);
                o
            }
            Request::Bench(runs) => {
                let o = message(id, "bench");
                set(&o, "runs", &(*runs as f64).into());
                o
            }
        }
        .into()
    }

    pub fn from_js(v: &JsValue) -> Option<(u32, Request)> {
        let (id, kind) = id_and_kind(v)?;
        let request = match kind.as_str() {
            "preload" => Request::Preload,
            "analyse" => Request::Analyse(get(v, "file").dyn_into().ok()?),
            "bench" => Request::Bench(get(v, "runs").as_f64()? as usize),
            _ => return None,
        };
        Some((id, request))
    }
}

impl Reply {
    /// The message and the buffers to transfer with it.
    pub fn to_js(&self, id: u32) -> (JsValue, Array) {
        let transfer = Array::new();
        let o = match self {
            Reply::Ready => message(0, "ready"),
            Reply::Status(text) => {
                let o = message(id, "status");
                set(&o, "text", &text.into());
                o
            }
            Reply::Analysed(a) => {
                let meta = Meta {
                    width: a.image.width,
                    height: a.image.height,
                    scaled_from: a.scaled_from,
                    faces: a
                        .faces
                        .iter()
                        .map(|d| Face {
                            bbox: d.bbox,
                            score: d.score,
                            landmarks: d.landmarks.clone(),
                        })
                        .collect(),
                    backend: a.backend.clone(),
                    timings: a.timings.clone(),
                };
                let o = message(id, "analysed");
                set(
                    &o,
                    "meta",
                    &serde_json::to_string(&meta).unwrap_or_default().into(),
                );
                for (key, data) in [
                    ("rgb", &a.image.data),
                    ("labels", &a.labels),
                    ("photo_png", &a.photo_png),
                    ("labels_png", &a.labels_png),
                ] {
                    let array = Uint8Array::from(data.as_slice());
                    transfer.push(&array.buffer());
                    set(&o, key, &array);
                }
                o
            }
            Reply::NoModels => message(id, "no-models"),
            Reply::Bench(json) => {
                let o = message(id, "bench");
                set(&o, "json", &json.into());
                o
            }
            Reply::Failed(text) => {
                let o = message(id, "failed");
                set(&o, "text", &text.into());
                o
            }
        };
        (o.into(), transfer)
    }

    pub fn from_js(v: &JsValue) -> Option<(u32, Reply)> {
        let (id, kind) = id_and_kind(v)?;
        let text = || get(v, "text").as_string().unwrap_or_default();
        let reply = match kind.as_str() {
            "ready" => Reply::Ready,
            "status" => Reply::Status(text()),
            "analysed" => {
                let meta: Meta = serde_json::from_str(&get(v, "meta").as_string()?).ok()?;
                Reply::Analysed(Box::new(Analysis {
                    image: RgbImage {
                        width: meta.width,
                        height: meta.height,
                        data: bytes(v, "rgb"),
                    },
                    scaled_from: meta.scaled_from,
                    faces: meta
                        .faces
                        .into_iter()
                        .map(|f| Detection {
                            bbox: f.bbox,
                            score: f.score,
                            landmarks: f.landmarks,
                        })
                        .collect(),
                    labels: bytes(v, "labels"),
                    backend: meta.backend,
                    timings: meta.timings,
                    photo_png: bytes(v, "photo_png"),
                    labels_png: bytes(v, "labels_png"),
                }))
            }
            "no-models" => Reply::NoModels,
            "bench" => Reply::Bench(get(v, "json").as_string()?),
            "failed" => Reply::Failed(text()),
            _ => return None,
        };
        Some((id, reply))
    }
}
