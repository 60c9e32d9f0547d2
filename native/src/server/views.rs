//! Stored records as the API's objects: predictions (the owner's full view, or the public
//! view of someone holding only the id: no face, identity or label map), files and shares.
//! URLs are built on the base the request came to (its `Host`, or `--public-url`), so a page
//! opened at `localhost` or a LAN name gets links that work there.

use consistentid_core::api::{FileObject, Prediction, PredictionInput, PredictionUrls, ShareView};

use super::AppState;
use super::ids::rfc3339;
use super::store::{FileRecord, Record};

/// The input without anything derived from the face or the person's photos (the photo
/// started from, its mask, a control image of theirs: `canny` is kept, it names no file).
pub fn public_input(input: &PredictionInput) -> PredictionInput {
    PredictionInput {
        face_image: None,
        id_embedding: None,
        face_parsing: None,
        image: None,
        mask: None,
        control_image: input.control_image.clone().filter(|c| c == "canny"),
        ..input.clone()
    }
}

/// A stored file's path on this host.
pub fn file_path(id: &str) -> String {
    format!("/v1/files/{id}")
}

pub fn file_url(base: &str, id: &str) -> String {
    format!("{base}{}", file_path(id))
}

/// A path of this host made absolute on `base`; other text as it is.
pub fn absolute(base: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url.to_string()
    }
}

/// The input as stored (file references as paths), with absolute URLs.
fn input_urls(base: &str, input: PredictionInput) -> PredictionInput {
    PredictionInput {
        face_image: input.face_image.map(|u| absolute(base, &u)),
        face_parsing: input.face_parsing.map(|u| absolute(base, &u)),
        image: input.image.map(|u| absolute(base, &u)),
        mask: input.mask.map(|u| absolute(base, &u)),
        control_image: input.control_image.map(|u| absolute(base, &u)),
        ..input
    }
}

/// A prediction as the API shows it; `owner` decides whether the face fields are included.
pub async fn prediction(state: &AppState, base: &str, r: &Record, owner: bool) -> Prediction {
    let queue_position = if r.status == consistentid_core::api::Status::Starting {
        state.store.queue_position(r.seq).await.ok()
    } else {
        None
    };
    Prediction {
        id: r.id.clone(),
        model: r.model.clone(),
        version: r.version.clone(),
        status: r.status,
        input: if owner {
            input_urls(base, r.input.clone())
        } else {
            public_input(&r.input)
        },
        output: (!r.outputs.is_empty())
            .then(|| r.outputs.iter().map(|f| file_url(base, f)).collect()),
        output_metadata: (!r.output_metadata.is_empty()).then(|| r.output_metadata.clone()),
        candidates: r.candidates.clone(),
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

pub fn file(base: &str, f: &FileRecord) -> FileObject {
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
        urls: [("get".to_string(), file_url(base, &f.id))].into(),
    }
}

/// The input with every defaulted parameter filled in with the value the job ran with (what
/// the PNG's parameters say).
pub fn effective_input(input: PredictionInput) -> PredictionInput {
    let Ok(request) = input.to_request() else {
        return input;
    };
    PredictionInput {
        num_inference_steps: Some(request.num_inference_steps),
        guidance_scale: Some(request.guidance_scale),
        start_merge_step: request.start_merge_step,
        width: Some(request.width),
        height: Some(request.height),
        num_outputs: Some(request.num_outputs),
        scheduler: Some(request.scheduler),
        negative_prompt: Some(input.negative_prompt.clone().unwrap_or_default()),
        ..input
    }
}

pub fn share(base: &str, share_id: &str, r: &Record, include_face: bool) -> ShareView {
    let r = &Record {
        input: effective_input(r.input.clone()),
        ..r.clone()
    };
    ShareView {
        share_id: share_id.to_string(),
        url: format!("{base}/s/{share_id}"),
        status: r.status,
        input: if include_face {
            input_urls(
                base,
                PredictionInput {
                    id_embedding: None,
                    face_parsing: None,
                    ..r.input.clone()
                },
            )
        } else {
            public_input(&r.input)
        },
        output: r.outputs.iter().map(|f| file_url(base, f)).collect(),
        output_metadata: r.output_metadata.clone(),
        created_at: rfc3339(r.created_at),
    }
}
