//! Stored records as the API's objects: predictions (the owner's full view, or the public
//! view of someone holding only the id: no face, identity or label map), files and shares.

use consistentid_core::api::{FileObject, Prediction, PredictionInput, PredictionUrls, ShareView};

use super::AppState;
use super::ids::rfc3339;
use super::store::{FileRecord, Record};

/// The input without anything derived from the face.
pub fn public_input(input: &PredictionInput) -> PredictionInput {
    PredictionInput {
        face_image: None,
        id_embedding: None,
        face_parsing: None,
        ..input.clone()
    }
}

pub fn file_url(state: &AppState, id: &str) -> String {
    format!("{}/v1/files/{id}", state.base)
}

/// A prediction as the API shows it; `owner` decides whether the face fields are included.
pub fn prediction(state: &AppState, r: &Record, owner: bool) -> Prediction {
    let base = &state.base;
    let queue_position = (r.status == consistentid_core::api::Status::Starting)
        .then(|| state.store.queue_position(r.seq).ok())
        .flatten();
    Prediction {
        id: r.id.clone(),
        model: r.model.clone(),
        version: r.version.clone(),
        status: r.status,
        input: if owner {
            r.input.clone()
        } else {
            public_input(&r.input)
        },
        output: (!r.outputs.is_empty())
            .then(|| r.outputs.iter().map(|f| file_url(state, f)).collect()),
        error: r.error.clone(),
        logs: r.logs.clone(),
        metrics: r.metrics.clone(),
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        completed_at: r.completed_at.map(rfc3339),
        urls: PredictionUrls {
            get: format!("{base}/v1/predictions/{}", r.id),
            cancel: format!("{base}/v1/predictions/{}/cancel", r.id),
            stream: format!("{base}/v1/predictions/{}/events", r.id),
            web: format!("{base}/p/{}", r.id),
        },
        queue_position,
    }
}

pub fn file(state: &AppState, f: &FileRecord) -> FileObject {
    FileObject {
        id: f.id.clone(),
        name: f.name.clone(),
        content_type: f.content_type.clone(),
        size: f.size,
        etag: format!("\"{}\"", f.sha256),
        checksums: [("sha256".to_string(), f.sha256.clone())].into(),
        metadata: Default::default(),
        created_at: rfc3339(f.created_at),
        expires_at: None,
        urls: [("get".to_string(), file_url(state, &f.id))].into(),
    }
}

pub fn share(state: &AppState, share_id: &str, r: &Record, include_face: bool) -> ShareView {
    ShareView {
        share_id: share_id.to_string(),
        url: format!("{}/s/{share_id}", state.base),
        status: r.status,
        input: if include_face {
            PredictionInput {
                id_embedding: None,
                face_parsing: None,
                ..r.input.clone()
            }
        } else {
            public_input(&r.input)
        },
        output: r.outputs.iter().map(|f| file_url(state, f)).collect(),
        created_at: rfc3339(r.created_at),
    }
}
