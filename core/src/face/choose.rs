//! Which face of an image gives the identity.

use super::Detection;
use crate::{Error, Result};

/// The "several faces" warning lists at most this many.
pub const MAX_LISTED: usize = 5;

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
        // A crowd photo can hold dozens: name the first few.
        let mut list: Vec<String> = detections
            .iter()
            .take(MAX_LISTED)
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "#{i} score {:.3} box ({:.0},{:.0})-({:.0},{:.0})",
                    d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
                )
            })
            .collect();
        if detections.len() > MAX_LISTED {
            list.push(format!("and {} more", detections.len() - MAX_LISTED));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn face(score: f32, x: f32) -> Detection {
        Detection {
            bbox: [x, 0.0, x + 50.0, 60.0],
            score,
            landmarks: vec![[0.0; 2]; 5],
        }
    }

    #[test]
    fn a_crowd_lists_five_faces_and_counts_the_rest() {
        let crowd: Vec<Detection> = (0..12)
            .map(|i| face(0.9 - i as f32 * 0.01, i as f32))
            .collect();
        let w = warnings(&crowd, &crowd[0]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].matches(" score ").count(), 5, "{}", w[0]);
        assert!(
            w[0].starts_with("12 faces found") && w[0].ends_with("and 7 more"),
            "{}",
            w[0]
        );
    }
}
