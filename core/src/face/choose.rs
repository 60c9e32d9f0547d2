//! Which face of an image gives the identity.

use super::Detection;
use crate::{Error, Result};

/// The "several faces" warning lists at most this many.
pub const MAX_LISTED: usize = 5;

/// Faces smaller than this (shorter box side, pixels) embed poorly: callers warn.
pub const SMALL_FACE_PX: f32 = 40.0;

/// The rule that picks one detection.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum FaceChoice {
    /// The official rule: the highest detector score (insightface's `faces[0]`).
    #[default]
    BestScore,
    /// The largest box.
    Largest,
    /// The n-th face in score order (0-based).
    Index(usize),
    /// The face in this box `[x1, y1, x2, y2]` (image pixels), e.g. the one a person picked in
    /// the browser: of the faces whose centre lies in it, the one overlapping it most. The
    /// browser's detector (BlazeFace) and the host's (SCRFD) frame a face differently, but
    /// each frames it around the same centre.
    Overlapping([f32; 4]),
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (0 when either is empty).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
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
        FaceChoice::Overlapping(chosen) => {
            let inside = |d: &Detection| {
                let (x, y) = ((d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0);
                x >= chosen[0] && x <= chosen[2] && y >= chosen[1] && y <= chosen[3]
            };
            // The first of equal overlaps: the higher score.
            let best = detections.iter().filter(|d| inside(d)).fold(
                None::<(&Detection, f32)>,
                |acc, d| {
                    let o = iou(&d.bbox, &chosen);
                    match acc {
                        Some((_, a)) if a >= o => acc,
                        _ => Some((d, o)),
                    }
                },
            );
            best.map(|(d, _)| d).ok_or_else(|| Error::Input {
                name: image.to_string(),
                reason: format!(
                    "no face found in the chosen box ({:.0},{:.0})-({:.0},{:.0}); {} face(s) found elsewhere",
                    chosen[0],
                    chosen[1],
                    chosen[2],
                    chosen[3],
                    detections.len()
                ),
            })
        }
    }
}

/// Checks a chosen box before any compute: four finite numbers, a positive width and height.
pub fn check_box(b: &[f32; 4]) -> std::result::Result<(), String> {
    if b.iter().any(|v| !v.is_finite()) {
        return Err("must be four finite numbers [x1, y1, x2, y2]".into());
    }
    if b[2] <= b[0] || b[3] <= b[1] {
        return Err(format!(
            "[x1, y1, x2, y2] needs x1 < x2 and y1 < y2, got [{}, {}, {}, {}]",
            b[0], b[1], b[2], b[3]
        ));
    }
    if b[2] <= 0.0 || b[3] <= 0.0 {
        return Err("the box lies outside the image (left of or above it)".into());
    }
    Ok(())
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
            "{} faces found, using the one at ({:.0},{:.0}); pick another with --face-index (the host: face_box): {}",
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

    #[test]
    fn a_box_picks_the_face_centred_in_it_and_nothing_when_none_is() {
        // Three faces side by side, in score order; the box is a looser frame of the second.
        let faces = [face(0.9, 0.0), face(0.8, 100.0), face(0.7, 200.0)];
        let loose = [95.0, -8.0, 158.0, 66.0];
        let got = choose_face(&faces, FaceChoice::Overlapping(loose), "p").unwrap();
        assert_eq!(got.bbox, faces[1].bbox);
        // Overlaps the first two faces' edges, holds neither centre.
        let between = [40.0, 0.0, 110.0, 60.0];
        let err = choose_face(&faces, FaceChoice::Overlapping(between), "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no face found in the chosen box"), "{err}");
        assert!((iou(&faces[0].bbox, &faces[0].bbox) - 1.0).abs() < 1e-6);
        assert_eq!(iou(&faces[0].bbox, &faces[2].bbox), 0.0);
        assert!(check_box(&[10.0, 10.0, 5.0, 20.0]).is_err());
        assert!(check_box(&[f32::NAN, 0.0, 1.0, 1.0]).is_err());
        assert!(check_box(&[-20.0, -20.0, -5.0, 4.0]).is_err());
        assert!(check_box(&loose).is_ok());
    }
}
