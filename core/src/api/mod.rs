//! The host's API types, shared by `consistentid serve` and the web app so the two cannot
//! drift apart. Shapes follow Replicate's HTTP API (predictions, statuses, cursor pages,
//! server-sent events), plus fal's `queue_position` and ComfyUI-style previews.

pub mod faces;
pub mod input;
pub mod pages;
pub mod prediction;
pub mod stream;

pub use faces::{HostFace, HostFaces, MAX_HOST_FACES};
pub use input::PredictionInput;
pub use pages::{PAGES, Page, PageKind};
pub use prediction::{
    Candidate, FileObject, Health, Metrics, OutputInfo, Prediction, PredictionPage, PredictionUrls,
    Problem, Share, ShareView, Status, WorkerHealth,
};
pub use stream::{
    CandidatesEvent, OutputEvent, PreviewEvent, ProgressEvent, StatusEvent, StreamEvent,
};

/// Where the host serves the models the web app runs in the browser
/// (`{ANALYSIS_MODELS_PATH}/{name}`).
pub const ANALYSIS_MODELS_PATH: &str = "/v1/analysis-models";
/// Their names: BlazeFace's ONNX graphs (the front model, and the back model for small faces)
/// and BiSeNet's face-parsing state dict.
pub const ANALYSIS_MODELS: [&str; 3] =
    ["blazeface.onnx", "blazeface-back.onnx", "face_parsing.pth"];
