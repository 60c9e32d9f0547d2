//! Server-sent events of a prediction (`urls.stream`). The SSE `event:` names are
//! [`StreamEvent::name`]; each `data:` is the JSON of the payload.

use serde::{Deserialize, Serialize};

use super::prediction::{Candidate, OutputInfo, Prediction, Status};
use crate::pipeline::events::Phase;

/// `status`: the prediction's status changed (or its place in the queue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusEvent {
    pub status: Status,
    pub queue_position: Option<usize>,
}

/// `progress`: a phase began, or a denoising step finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgressEvent {
    pub phase: Phase,
    /// 0-based image index for the per-image phases.
    pub image: Option<usize>,
    /// Steps done of `total` (denoise), else 0 of 0.
    pub step: usize,
    pub total: usize,
}

/// `preview`: a small PNG data URI of the predicted final image (one pixel per latent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewEvent {
    pub image: usize,
    pub step: usize,
    pub data_uri: String,
}

/// `output`: image `index` is ready at `url`, with its seed and likeness to the face.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputEvent {
    pub index: usize,
    pub url: String,
    /// The image's seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// ArcFace cosine similarity to the reference face (absent or null: not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity: Option<f32>,
    /// Why `face_similarity` is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity_reason: Option<String>,
}

impl OutputEvent {
    /// What the event says about the image, when it says anything.
    pub fn info(&self) -> Option<OutputInfo> {
        Some(OutputInfo {
            seed: self.seed?,
            face_similarity: self.face_similarity,
            face_similarity_reason: self.face_similarity_reason.clone(),
        })
    }
}

/// `candidates`: with `best_of`, every candidate's likeness (sent before the kept images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CandidatesEvent {
    pub candidates: Vec<Candidate>,
}

/// One event of the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    Status(StatusEvent),
    Progress(ProgressEvent),
    Preview(PreviewEvent),
    Output(OutputEvent),
    Candidates(CandidatesEvent),
    Log(String),
    /// The final prediction (succeeded, failed or canceled); the stream ends after it.
    Completed(Box<Prediction>),
    /// A failure, with the problem's detail; `completed` follows.
    Error(String),
}

impl StreamEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Status(_) => "status",
            StreamEvent::Progress(_) => "progress",
            StreamEvent::Preview(_) => "preview",
            StreamEvent::Output(_) => "output",
            StreamEvent::Candidates(_) => "candidates",
            StreamEvent::Log(_) => "log",
            StreamEvent::Completed(_) => "completed",
            StreamEvent::Error(_) => "error",
        }
    }

    /// The SSE `data:` (JSON).
    pub fn data(&self) -> String {
        let json = match self {
            StreamEvent::Status(e) => serde_json::to_string(e),
            StreamEvent::Progress(e) => serde_json::to_string(e),
            StreamEvent::Preview(e) => serde_json::to_string(e),
            StreamEvent::Output(e) => serde_json::to_string(e),
            StreamEvent::Candidates(e) => serde_json::to_string(e),
            StreamEvent::Log(text) => serde_json::to_string(&serde_json::json!({ "text": text })),
            StreamEvent::Completed(p) => serde_json::to_string(p),
            StreamEvent::Error(detail) => {
                serde_json::to_string(&serde_json::json!({ "detail": detail }))
            }
        };
        json.unwrap_or_else(|_| "{}".into())
    }

    /// The event [`StreamEvent::name`] and [`StreamEvent::data`] describe (another process
    /// sent it); `None` for an unknown name or data that is not that event's.
    pub fn parse(name: &str, data: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Text {
            text: String,
        }
        #[derive(Deserialize)]
        struct Detail {
            detail: String,
        }
        let event = match name {
            "status" => StreamEvent::Status(serde_json::from_str(data).ok()?),
            "progress" => StreamEvent::Progress(serde_json::from_str(data).ok()?),
            "preview" => StreamEvent::Preview(serde_json::from_str(data).ok()?),
            "output" => StreamEvent::Output(serde_json::from_str(data).ok()?),
            "candidates" => StreamEvent::Candidates(serde_json::from_str(data).ok()?),
            "log" => StreamEvent::Log(serde_json::from_str::<Text>(data).ok()?.text),
            "completed" => StreamEvent::Completed(Box::new(serde_json::from_str(data).ok()?)),
            "error" => StreamEvent::Error(serde_json::from_str::<Detail>(data).ok()?.detail),
            _ => return None,
        };
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_back_from_their_name_and_data() {
        let events = [
            StreamEvent::Status(StatusEvent {
                status: Status::Starting,
                queue_position: Some(3),
            }),
            StreamEvent::Progress(ProgressEvent {
                phase: Phase::Denoise,
                image: Some(1),
                step: 4,
                total: 30,
            }),
            StreamEvent::Log("warning: ünïcode".into()),
            StreamEvent::Error("no face".into()),
        ];
        for event in events {
            let back = StreamEvent::parse(event.name(), &event.data());
            assert_eq!(back.as_ref(), Some(&event));
        }
        assert_eq!(StreamEvent::parse("status", "{}"), None);
        assert_eq!(StreamEvent::parse("nonsense", "{}"), None);
    }
}
