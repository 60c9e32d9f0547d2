//! Which face of an image gives the identity.

use super::Detection;
use crate::{Error, Result};

/// Faces smaller than this (shorter box side, pixels) embed poorly: callers warn.
pub const SMALL_FACE_PX: f32 = 40.0;

/// The rule that picks one detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FaceChoice {
    /// The official rule: the highest detector score (insightface's `faces[0]`).
    #[default]
    BestScore,
    /// The largest box.
    Largest,
    /// The n-th face in score order (0-based).
    Index(usize),
}

/// Picks a face. `detections` are in score order; `image` names the image in errors.
pub fn choose_face<'a>(
    detections: &'a [Detection],
    choice: FaceChoice,
    image: &str,
) -> Result<&'a Detection> {
    if detections.is_empty() {
        return Err(Error::Input {
            name: image.to_string(),
            reason: "no face found".into(),
        });
    }
    match choice {
        FaceChoice::BestScore => Ok(&detections[0]),
        FaceChoice::Largest => Ok(detections
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| a.area().total_cmp(&b.area()).then(ib.cmp(ia)))
            .map(|(_, d)| d)
            .unwrap_or(&detections[0])),
        FaceChoice::Index(i) => detections.get(i).ok_or_else(|| Error::Input {
            name: image.to_string(),
            reason: format!(
                "face index {i} requested but only {} face(s) found",
                detections.len()
            ),
        }),
    }
}

/// Human-readable warnings about a detection result: several faces, a tiny chosen face.
pub fn warnings(detections: &[Detection], chosen: &Detection) -> Vec<String> {
    let mut out = Vec::new();
    if detections.len() > 1 {
        let list: Vec<String> = detections
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "#{i} score {:.3} box ({:.0},{:.0})-({:.0},{:.0})",
                    d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
                )
            })
            .collect();
        out.push(format!(
            "{} faces found, using the one at ({:.0},{:.0}); pick another with --face-index: {}",
            detections.len(),
            chosen.bbox[0],
            chosen.bbox[1],
            list.join("; ")
        ));
    }
    let side = chosen.width().min(chosen.height());
    if side < SMALL_FACE_PX {
        out.push(format!(
            "the face is only {side:.0} px across (under {SMALL_FACE_PX:.0}): identity will be weak; use a larger photo"
        ));
    }
    out
}
