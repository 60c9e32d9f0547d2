//! BlazeFace and BiSeNet for the browser, built once per page from the files the host serves
//! (`/v1/analysis-models/…`, revalidated with their ETag so the browser keeps its copy).

use consistentid_core::api::ANALYSIS_MODELS_PATH;
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::face::blazeface::BlazeFace;
use consistentid_core::onnx::OnnxModel;
use wasm_bindgen_futures::JsFuture;

use super::device::Backend;
use super::{js_error, scope};

/// The networks on one device.
pub struct Models {
    pub backend: Backend,
    pub blazeface: BlazeFace,
    /// The back-camera model, for faces too small for the front one; `None` when the host's
    /// model folder predates it.
    pub blazeface_back: Option<BlazeFace>,
    pub bisenet: BiSeNet,
}

/// One model file from the host. `Ok(None)` when the host has none (404).
async fn fetch(name: &str) -> Result<Option<Vec<u8>>, String> {
    let url = format!("{ANALYSIS_MODELS_PATH}/{name}");
    let response = scope::fetch(&url)
        .await
        .map_err(|e| format!("cannot download {name} from the host: {e}"))?;
    if response.status() == 404 {
        return Ok(None);
    }
    if !response.ok() {
        return Err(format!(
            "downloading {name}: the host answered {}",
            response.status()
        ));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(|_| format!("the download of {name} broke off"))?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Downloads and builds the networks; `Ok(None)` when the host serves no analysis models.
pub async fn load(backend: Backend) -> Result<Option<Models>, String> {
    let Some(onnx) = fetch("blazeface.onnx").await? else {
        return Ok(None);
    };
    let Some(pth) = fetch("face_parsing.pth").await? else {
        return Ok(None);
    };
    let device = &backend.device;
    let graph = OnnxModel::parse(&onnx, "blazeface.onnx").map_err(|e| e.to_string())?;
    let blazeface = BlazeFace::new(graph, device).map_err(|e| e.to_string())?;
    let bisenet = BiSeNet::load(&pth, "face_parsing.pth", device).map_err(|e| e.to_string())?;
    let blazeface_back = match fetch("blazeface-back.onnx").await? {
        Some(onnx) => {
            let graph =
                OnnxModel::parse(&onnx, "blazeface-back.onnx").map_err(|e| e.to_string())?;
            Some(BlazeFace::new(graph, device).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    Ok(Some(Models {
        backend,
        blazeface,
        blazeface_back,
        bisenet,
    }))
}
