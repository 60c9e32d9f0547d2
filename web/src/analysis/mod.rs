//! The face analysis the browser does before anything is sent: decode the photo, find the
//! faces (BlazeFace), parse the face (BiSeNet, 512 × 512 label map), with core's models on
//! WebGPU or the CPU. Every device read is asynchronous, and the page gets a frame between the
//! steps so it keeps showing progress.

pub mod bench;
pub mod decode;
pub mod device;
pub mod models;

use std::cell::RefCell;
use std::rc::Rc;

use consistentid_core::face::Detection;
use consistentid_core::image::RgbImage;
use leptos::web_sys;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use models::Models;

/// A JavaScript exception as a message.
pub fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "the browser refused".into())
}

/// What the analysis found.
pub struct Analysis {
    /// The decoded, oriented pixels: what the host is sent and what was analysed.
    pub image: RgbImage,
    pub scaled_from: Option<(u32, u32)>,
    /// Faces, best score first (the host's rule picks the first).
    pub faces: Vec<Detection>,
    /// BiSeNet's 512 × 512 label map of the whole photo.
    pub labels: Vec<u8>,
    /// Where it ran (WebGPU adapter or CPU).
    pub backend: String,
    /// (step, milliseconds).
    pub timings: Vec<(&'static str, f64)>,
}

/// The page's models: loaded once, on first use.
enum Slot {
    Empty,
    Loading,
    Ready(Rc<Models>),
    /// The host serves no analysis models: the host analyses instead.
    Unavailable,
}

thread_local! {
    static MODELS: RefCell<Slot> = const { RefCell::new(Slot::Empty) };
    /// Chosen once: a wgpu runtime cannot be set up twice, even after a failed download.
    static BACKEND: RefCell<Option<device::Backend>> = const { RefCell::new(None) };
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_default()
}

/// Lets the browser render (and stay responsive) before the next heavy step.
pub async fn next_frame() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// The models, loading them (once per page) if needed. `Ok(None)`: the host has none. A
/// failed download is tried again on the next photo.
async fn models() -> Result<Option<Rc<Models>>, String> {
    enum Next {
        Done(Option<Rc<Models>>),
        Wait,
        Load,
    }
    loop {
        let next = MODELS.with_borrow(|slot| match slot {
            Slot::Ready(m) => Next::Done(Some(m.clone())),
            Slot::Unavailable => Next::Done(None),
            Slot::Loading => Next::Wait,
            Slot::Empty => Next::Load,
        });
        match next {
            Next::Done(m) => return Ok(m),
            Next::Wait => next_frame().await,
            Next::Load => break,
        }
    }
    MODELS.set(Slot::Loading);
    let backend = match BACKEND.with_borrow(Clone::clone) {
        Some(b) => b,
        None => {
            let b = device::init().await;
            BACKEND.set(Some(b.clone()));
            b
        }
    };
    match models::load(backend).await {
        Ok(Some(m)) => {
            let m = Rc::new(m);
            MODELS.set(Slot::Ready(m.clone()));
            Ok(Some(m))
        }
        Ok(None) => {
            MODELS.set(Slot::Unavailable);
            Ok(None)
        }
        Err(e) => {
            MODELS.set(Slot::Empty);
            Err(e)
        }
    }
}

/// Starts loading the models early (e.g. when the page opens), so the first photo is faster.
pub fn preload() {
    leptos::task::spawn_local(async {
        let _ = models().await;
    });
}

/// Decodes and analyses `file`; `status` is told each step. `Ok(None)` when the host serves no
/// analysis models (it will analyse the photo itself).
pub async fn analyse(
    file: &web_sys::Blob,
    status: impl Fn(&str),
) -> Result<Option<Analysis>, String> {
    let mut timings = Vec::new();
    status("Decoding the photo…");
    let t = now();
    let decoded = decode::decode(file).await?;
    timings.push(("decode", now() - t));
    status("Loading the face models…");
    next_frame().await;
    let t = now();
    let Some(models) = models().await? else {
        return Ok(None);
    };
    timings.push(("models", now() - t));
    status("Finding faces…");
    next_frame().await;
    let t = now();
    let faces = models
        .blazeface
        .detect_async(&decoded.image)
        .await
        .map_err(|e| e.to_string())?;
    timings.push(("BlazeFace", now() - t));
    status("Parsing the face…");
    next_frame().await;
    let t = now();
    let labels = models
        .bisenet
        .label_map_async(&decoded.image, &models.backend.device)
        .await
        .map_err(|e| e.to_string())?;
    timings.push(("BiSeNet", now() - t));
    Ok(Some(Analysis {
        image: decoded.image,
        scaled_from: decoded.scaled_from,
        faces,
        labels,
        backend: models.backend.name.clone(),
        timings,
    }))
}
