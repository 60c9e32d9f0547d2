//! How much a generated portrait looks like the reference face: the cosine of ArcFace
//! embeddings (FaceSim, the paper's identity metric, on one image), with the face of the
//! output found as the reference's was (SCRFD, highest score, 5-point alignment). An output
//! without a face has no score, and says why; best-of-N ranks candidates by it.

use serde::{Deserialize, Serialize};

use super::analysis::FaceAnalysis;
use super::choose::FaceChoice;
use crate::image::RgbImage;
use crate::{Error, Result};

/// The likeness of one image to the reference face.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Likeness {
    /// Cosine similarity of the ArcFace embeddings, from -1 to 1 (same person: above about
    /// 0.4; ConsistentID portraits typically 0.5–0.8). Null when it could not be measured.
    pub face_similarity: Option<f32>,
    /// Why `face_similarity` is null (no face found in the image, no reference identity…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_similarity_reason: Option<String>,
}

impl Likeness {
    /// A measured likeness.
    pub fn score(value: f32) -> Self {
        Self {
            face_similarity: Some(value),
            face_similarity_reason: None,
        }
    }

    /// No likeness, for `reason`.
    pub fn unmeasured(reason: &str) -> Self {
        Self {
            face_similarity: None,
            face_similarity_reason: Some(reason.to_string()),
        }
    }

    /// The A1111-style parameters entry (`Face similarity: 0.712`), or the reason.
    pub fn parameter(&self) -> String {
        match (self.face_similarity, &self.face_similarity_reason) {
            (Some(s), _) => format!("Face similarity: {s:.3}"),
            (None, Some(reason)) => format!("Face similarity: none ({reason})"),
            (None, None) => "Face similarity: none".to_string(),
        }
    }

    /// For ranking: an unmeasured image ranks below every measured one.
    pub fn rank_key(&self) -> f32 {
        self.face_similarity.unwrap_or(f32::NEG_INFINITY)
    }
}

/// Why an image has no likeness when the output has no face.
pub const NO_FACE: &str = "no face found in the image";

/// Cosine similarity of two embeddings (0 when either is zero or the lengths differ).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += x as f64 * y as f64;
        na += x as f64 * x as f64;
        nb += y as f64 * y as f64;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

impl FaceAnalysis {
    /// The likeness of `image` to the `reference` embedding: the highest-scoring face of the
    /// image, embedded as the reference was. `reference` need not be normalised; an all-zero
    /// reference (no face in the photo, allowed by the caller) is not measured.
    pub fn likeness(&self, reference: &[f32], image: &RgbImage) -> Result<Likeness> {
        if reference.iter().all(|&v| v == 0.0) {
            return Ok(Likeness::unmeasured("the reference has no identity"));
        }
        match self.identify(image, "the generated image", FaceChoice::BestScore, false) {
            Ok(id) => Ok(Likeness::score(cosine(reference, &id.embedding))),
            Err(Error::Image { reason, .. }) if reason == "no face found" => {
                Ok(Likeness::unmeasured(NO_FACE))
            }
            Err(e) => Err(e),
        }
    }
}

/// The order in which to keep `N` candidates: most alike first, the earlier candidate first
/// among equals (so the choice is deterministic).
pub fn best_first(candidates: &[Likeness]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .rank_key()
            .total_cmp(&candidates[a].rank_key())
            .then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_scale_free_and_zero_safe() {
        let a = [1.0, 2.0, 2.0];
        assert!((cosine(&a, &[2.0, 4.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&a, &[-1.0, -2.0, -2.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&a, &[0.0; 3]), 0.0);
        assert_eq!(cosine(&a, &[1.0]), 0.0);
    }

    #[test]
    fn the_most_alike_come_first_and_faceless_last() {
        let c = [
            Likeness::score(0.2),
            Likeness::unmeasured(NO_FACE),
            Likeness::score(0.7),
            Likeness::score(0.2),
            Likeness::score(-0.1),
        ];
        assert_eq!(best_first(&c), [2, 0, 3, 4, 1]);
        assert_eq!(c[2].parameter(), "Face similarity: 0.700");
        assert_eq!(
            c[1].parameter(),
            "Face similarity: none (no face found in the image)"
        );
    }
}
