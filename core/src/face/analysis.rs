//! Face analysis as the official pipeline does it with insightface's `buffalo_l`: SCRFD
//! detection → the best face (or the caller's choice) → 5-point alignment → ArcFace's
//! L2-normalised embedding. Tested through `parity_face.rs` (detector and embedder) and the
//! CLI/server tests (the whole chain).

use burn::tensor::Device;

use super::arcface::ArcFace;
use super::choose::{FaceChoice, choose_face, warnings};
use super::scrfd::Scrfd;
use super::{ChannelOrder, Detection};
use crate::image::RgbImage;
use crate::onnx::OnnxModel;
use crate::weights::WeightSource;
use crate::{Error, Result};

/// buffalo_l's detector and recogniser.
pub const DETECTOR: &str = "det_10g.onnx";
pub const RECOGNISER: &str = "w600k_r50.onnx";

/// Where buffalo_l's files may sit inside a model folder.
const FOLDERS: [&str; 3] = ["", "buffalo_l/", "models/buffalo_l/"];

/// The identity of one photo.
#[derive(Clone, Debug)]
pub struct Identity {
    /// `[512]`, L2-normalised (zeros when no face was found and that was allowed).
    pub embedding: Vec<f32>,
    /// The face used, if one was found.
    pub face: Option<Detection>,
    /// For the user: several faces, a tiny face, no face.
    pub warnings: Vec<String>,
}

/// SCRFD + ArcFace, loaded once.
pub struct FaceAnalysis {
    pub detector: Scrfd,
    pub recogniser: ArcFace,
}

impl FaceAnalysis {
    /// The paths of buffalo_l's two files inside `source`, if both are there.
    pub fn find(source: &dyn WeightSource) -> Option<(String, String)> {
        Some((
            Self::find_file(source, DETECTOR)?,
            Self::find_file(source, RECOGNISER)?,
        ))
    }

    /// Where one of buffalo_l's files (`name`) sits inside `source`, if it is there.
    pub fn find_file(source: &dyn WeightSource, name: &str) -> Option<String> {
        FOLDERS
            .iter()
            .map(|dir| format!("{dir}{name}"))
            .find(|p| source.exists(p))
    }

    /// Loads both networks from `source` (see [`Self::find`]); `Ok(None)` when absent.
    pub fn load(
        source: &dyn WeightSource,
        order: ChannelOrder,
        device: &Device,
    ) -> Result<Option<Self>> {
        let Some((det, rec)) = Self::find(source) else {
            return Ok(None);
        };
        let model = |path: &str| OnnxModel::parse(&source.read(path)?, &source.display_path(path));
        let mut detector = Scrfd::new(model(&det)?, device)?;
        detector.channel_order = order;
        let mut recogniser = ArcFace::new(model(&rec)?, device)?;
        recogniser.channel_order = order;
        Ok(Some(Self {
            detector,
            recogniser,
        }))
    }

    /// Detects, chooses and embeds. With no face: an error naming `image_name`, or a zero
    /// identity with a warning when `allow_no_face` (what the official code silently does).
    pub fn identify(
        &self,
        image: &RgbImage,
        image_name: &str,
        choice: FaceChoice,
        allow_no_face: bool,
    ) -> Result<Identity> {
        let found = self.detector.detect(image)?;
        if found.is_empty() {
            if allow_no_face {
                return Ok(Identity {
                    embedding: vec![0.0; 512],
                    face: None,
                    warnings: vec![format!(
                        "no face found in {image_name}: using a zero identity"
                    )],
                });
            }
            return Err(Error::Image {
                name: image_name.to_string(),
                reason: "no face found".into(),
            });
        }
        let chosen = choose_face(&found, choice, image_name)?;
        let aligned = self.recogniser.align(image, &chosen.landmarks)?;
        let embedding = self.recogniser.embed(&aligned)?.normed;
        Ok(Identity {
            embedding,
            face: Some(chosen.clone()),
            warnings: warnings(&found, chosen),
        })
    }
}
