//! Face detection, alignment and identity embeddings.
//!
//! Detectors: [`scrfd`] (insightface's SCRFD, what the official pipeline uses), [`mtcnn`] and
//! [`blazeface`] (permissively licensed alternatives with real weights in public packages).
//! [`align`] warps a face onto the ArcFace template; [`arcface`] embeds it.

pub mod align;
pub mod analysis;
pub mod arcface;
pub mod blazeface;
pub mod choose;
pub mod facenet;
pub mod likeness;
pub mod mtcnn;
pub mod scrfd;

pub use choose::{FaceChoice, choose_face};

/// One detected face in image pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// x1, y1, x2, y2.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Five points (eyes, nose, mouth corners) for SCRFD and MTCNN; BlazeFace's six.
    pub landmarks: Vec<[f32; 2]>,
}

impl Detection {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
}

/// Which channel order the recognition and detection networks are fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    /// As the official SD1.5 pipeline: it hands insightface an RGB array where insightface
    /// expects BGR, so the networks see BGR. The released weights were used this way.
    #[default]
    Official,
    /// As insightface intends: the networks see RGB.
    Corrected,
}
