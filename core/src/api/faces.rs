//! `GET /v1/files/{id}/faces`: the faces the host's own detector (SCRFD, the one a job uses)
//! finds in an uploaded photo, for the web app when its in-browser detector misses a face the
//! person can see.

use serde::{Deserialize, Serialize};

/// One face the host found, in the photo's pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFace {
    /// `[x1, y1, x2, y2]`: send it as the prediction's `face_box` to use this face.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Eyes, nose, mouth corners.
    pub landmarks: Vec<[f32; 2]>,
}

/// The host's detections, best score first (at most [`MAX_HOST_FACES`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostFaces {
    /// The detector's name.
    pub detector: String,
    pub faces: Vec<HostFace>,
    /// How many it found in all.
    pub found: usize,
}

/// At most this many faces are listed.
pub const MAX_HOST_FACES: usize = 20;
