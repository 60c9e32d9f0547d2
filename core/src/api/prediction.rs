//! The prediction object and the host's other JSON bodies, as Replicate's API shapes them.

use serde::{Deserialize, Serialize};

use super::input::PredictionInput;
use crate::error::FieldError;
use crate::face::likeness::Likeness;
pub use crate::pipeline::events::Candidate;

/// What is known about one output image besides its URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputInfo {
    /// The seed that made it.
    pub seed: u64,
    /// Its likeness to the reference face: the cosine similarity of ArcFace embeddings, -1
    /// to 1 (photos of one person: above about 0.4). Null when not measured.
    pub face_similarity: Option<f32>,
    /// Why `face_similarity` is null (no face found in the image, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity_reason: Option<String>,
}

impl OutputInfo {
    pub fn new(seed: u64, likeness: Likeness) -> Self {
        Self {
            seed,
            face_similarity: likeness.face_similarity,
            face_similarity_reason: likeness.face_similarity_reason,
        }
    }
}

/// Replicate's statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Accepted, waiting in the queue.
    Starting,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Canceled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Status::Starting,
            Status::Processing,
            Status::Succeeded,
            Status::Failed,
            Status::Canceled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Seconds: the whole prediction and each phase (summed over images).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Metrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predict_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyse_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denoise_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_time: Option<f64>,
    /// Measuring each image's likeness to the face.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_time: Option<f64>,
}

/// Absolute URLs of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PredictionUrls {
    pub get: String,
    pub cancel: String,
    /// Server-sent events.
    pub stream: String,
    /// The web app's page of this prediction.
    pub web: String,
}

/// A prediction, as Replicate's API returns it, plus fal's `queue_position`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prediction {
    /// 26 lowercase base32 characters (128 random bits).
    pub id: String,
    pub model: String,
    pub version: String,
    pub status: Status,
    /// The input as it runs (the seed resolved; a data-URI face replaced by its file URL).
    pub input: PredictionInput,
    /// Absolute URLs of the PNGs, in order (null until the first image).
    pub output: Option<Vec<String>>,
    /// One entry per `output` image: its seed and `face_similarity`, the ArcFace cosine
    /// similarity to the reference face (null with `face_similarity_reason` when the image
    /// has no face).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_metadata: Option<Vec<OutputInfo>>,
    /// With `best_of`: every candidate made, in seed order, with its likeness and whether it
    /// was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<Candidate>>,
    pub error: Option<String>,
    pub logs: String,
    pub metrics: Metrics,
    /// RFC 3339 times.
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub urls: PredictionUrls,
    /// Jobs ahead of this one (0: next); null once it runs.
    pub queue_position: Option<usize>,
}

/// A cursor page, as Replicate's list endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PredictionPage {
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<Prediction>,
}

/// An RFC 9457 problem detail (`application/problem+json`), with one entry per bad field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `loading`, `ready`, `degraded` or `failed`.
    pub status: String,
    /// What is happening while loading (fetching, loading the models) or why it failed.
    pub detail: String,
    /// The compute backend (`cpu`, `cuda`, `wgpu`).
    pub device: String,
    /// Jobs waiting (not counting the one running).
    pub queue_length: usize,
    pub queue_capacity: usize,
    pub version: String,
    /// The ControlNets installed on this host (the names `controlnet` takes).
    #[serde(default)]
    pub controlnets: Vec<String>,
    /// The worker processes heard from lately (several hosts on one database), this one's
    /// included.
    #[serde(default)]
    pub workers: Vec<WorkerHealth>,
}

/// A worker process in `/v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerHealth {
    pub id: String,
    /// `loading`, `ready`, `failed` or `draining`.
    pub status: String,
    pub detail: String,
    /// The compute backend (`cpu`, `cuda`, `wgpu`).
    pub device: String,
    /// Whether it is running a job.
    pub busy: bool,
    /// Seconds since it was last heard from.
    pub last_seen_seconds: f64,
}

/// An uploaded file, as Replicate's files API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileObject {
    /// The SHA-256 of the content (files are content-addressed).
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub etag: String,
    pub checksums: std::collections::BTreeMap<String, String>,
    pub metadata: std::collections::BTreeMap<String, String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub urls: std::collections::BTreeMap<String, String>,
}

/// `POST /v1/predictions/{id}/share`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Share {
    pub share_id: String,
    /// The share page.
    pub url: String,
}

/// `GET /v1/shares/{share_id}`: what anyone with the link sees (never the face, unless its
/// owner shared it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareView {
    pub share_id: String,
    pub url: String,
    pub status: Status,
    /// The parameters (no face, identity or label map).
    pub input: PredictionInput,
    pub output: Vec<String>,
    /// Per image: its seed and likeness to the face (the face itself is never shown).
    #[serde(default)]
    pub output_metadata: Vec<OutputInfo>,
    pub created_at: String,
}
