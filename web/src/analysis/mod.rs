//! The face analysis the browser does before anything is sent: decode the photo, find the
//! faces (BlazeFace's front model, then its back model for small faces), parse the face (BiSeNet, 512 × 512 label map), with core's models on
//! WebGPU or the CPU, every device read asynchronous. It runs in a dedicated worker (worker.rs,
//! started by client.rs), so the page stays responsive while a network runs.

pub mod bench;
pub mod client;
pub mod decode;
pub mod device;
pub mod models;
pub mod protocol;
pub mod scope;
pub mod worker;

use std::cell::RefCell;
use std::rc::Rc;

use consistentid_core::bisenet::preprocess::SIZE;
use consistentid_core::face::{Detection, blazeface};
use consistentid_core::image::RgbImage;
use leptos::web_sys;
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::*;

use models::Models;
use scope::{now, yield_now};

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
#[derive(Clone)]
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
    pub timings: Vec<(String, f64)>,
    /// `image` as a PNG file (lossless: the host decodes exactly these pixels).
    pub photo_png: Vec<u8>,
    /// `labels` as an 8-bit greyscale PNG (the request's `face_parsing`).
    pub labels_png: Vec<u8>,
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

/// The models, loading them (once per page) if needed. `Ok(None)`: the host has none. A
/// failed download is tried again on the next photo.
pub async fn models() -> Result<Option<Rc<Models>>, String> {
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
            Next::Wait => yield_now().await,
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
    timings.push(("decode".to_string(), now() - t));
    status("Loading the face models…");
    yield_now().await;
    let t = now();
    let Some(models) = models().await? else {
        return Ok(None);
    };
    timings.push(("models".to_string(), now() - t));
    status("Finding faces…");
    yield_now().await;
    let t = now();
    let mut faces = models
        .blazeface
        .detect_async(&decoded.image)
        .await
        .map_err(|e| e.to_string())?;
    timings.push(("BlazeFace".to_string(), now() - t));
    if let Some(back) = &models.blazeface_back {
        // The back model finds the small faces beside a large one that the front model misses;
        // the front model's boxes stay for the faces both find.
        yield_now().await;
        let t = now();
        let small = back
            .detect_async(&decoded.image)
            .await
            .map_err(|e| e.to_string())?;
        faces = blazeface::merge(faces, small, back.nms_threshold);
        timings.push(("BlazeFace (small faces)".to_string(), now() - t));
    }
    status("Parsing the face…");
    yield_now().await;
    let t = now();
    let labels = models
        .bisenet
        .label_map_async(&decoded.image, &models.backend.device)
        .await
        .map_err(|e| e.to_string())?;
    timings.push(("BiSeNet".to_string(), now() - t));
    let photo_png = decode::png(&decoded.image)?;
    let labels_png = decode::label_png(&labels, SIZE)?;
    Ok(Some(Analysis {
        photo_png,
        labels_png,
        image: decoded.image,
        scaled_from: decoded.scaled_from,
        faces,
        labels,
        backend: models.backend.name.clone(),
        timings,
    }))
}
