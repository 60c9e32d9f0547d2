//! `--into`: the reference identity put into a given photo without drawing a mask. The face
//! of the target photo is found, a square around it cropped, its chosen regions (face, hair,
//! neck) parsed by BiSeNet into a mask that is dilated and feathered (sizes in the photo's
//! pixels), the crop inpainted at the model's size, and the result pasted back through the
//! feathered mask: every pixel the mask does not reach is the photo's own, bit for bit.

use super::engine::Engine;
use super::events::{Candidate, GeneratedImage, Phase, Sink};
use super::photo::PhotoInput;
use super::photo_job::PhotoJob;
use crate::bisenet::preprocess::SIZE as PARSING_SIZE;
use crate::face::{FaceChoice, choose_face};
use crate::image::RgbImage;
use crate::image::pil::{Filter, resize};
use crate::{Error, Result};

/// A target photo to put the identity into.
#[derive(Clone, Debug)]
pub struct IntoJob {
    /// Upright (EXIF orientation applied).
    pub photo: RgbImage,
    /// Its file name, for messages and PNG parameters.
    pub name: String,
    /// Which of its faces.
    pub choice: FaceChoice,
    /// A mask of the photo's size replacing the automatic one (white repaints).
    pub mask: Option<RgbImage>,
    pub settings: IntoSettings,
    pub strength: f64,
}

impl Engine {
    /// Finds the target face and makes the inpainting job of its crop (white where the result
    /// will show) and the paste-back. Errors before any generation: no detector, no face,
    /// none of the chosen regions, an empty mask.
    pub fn prepare_into(&self, into: &IntoJob) -> Result<(PhotoJob, Paste)> {
        let (w, h) = (into.photo.width, into.photo.height);
        let (c, alpha) = match &into.mask {
            Some(mask) => {
                // The given mask's bounding square, with the margin around it.
                let on: Vec<usize> = (0..w * h)
                    .filter(|&i| mask.data[i * 3..i * 3 + 3].iter().any(|&v| v >= 128))
                    .collect();
                let (Some(&first), Some(&last)) = (on.first(), on.last()) else {
                    return Err(Error::InvalidFields(vec![crate::error::FieldError::new(
                        "mask",
                        "is black everywhere: nothing would be repainted",
                    )]));
                };
                let xs = on.iter().map(|&i| i % w);
                let (x1, x2) = (xs.clone().min().unwrap_or(0), xs.max().unwrap_or(0));
                let bbox = [
                    x1 as f32,
                    (first / w) as f32,
                    x2 as f32 + 1.0,
                    (last / w) as f32 + 1.0,
                ];
                let c = crop_box(bbox, w, h, into.settings.margin);
                let cropped = crop(mask, c);
                let alpha = cropped
                    .data
                    .chunks_exact(3)
                    .map(|p| {
                        if p.iter().any(|&v| v >= 128) {
                            1.0
                        } else {
                            0.0
                        }
                    })
                    .collect();
                (c, alpha)
            }
            None => {
                let faces = self.faces.as_ref().ok_or_else(|| {
                    Error::InvalidRequest(
                        "putting a face into a photo finds it with insightface's buffalo_l detector (det_10g.onnx), which the model folder lacks; give a --mask instead".into(),
                    )
                })?;
                let found = faces.detector.detect(&into.photo)?;
                if found.is_empty() {
                    return Err(Error::Image {
                        name: into.name.clone(),
                        reason: "no face found in the photo to put the face into".into(),
                    });
                }
                let chosen = choose_face(&found, into.choice, &into.name)?;
                let c = crop_box(chosen.bbox, w, h, into.settings.margin);
                let labels = self
                    .pipe
                    .bisenet
                    .label_map(&crop(&into.photo, c), &self.pipe.sd.device)?;
                let alpha = alpha_mask(&labels, PARSING_SIZE, c.side, &into.settings).map_err(
                    |e| match e {
                        Error::Image { reason, .. } => Error::Image {
                            name: into.name.clone(),
                            reason,
                        },
                        e => e,
                    },
                )?;
                (c, alpha)
            }
        };
        let regions: Vec<&str> = into
            .settings
            .regions
            .iter()
            .map(|r| match r {
                Region::Face => "face",
                Region::Hair => "hair",
                Region::Neck => "neck",
            })
            .collect();
        let job = PhotoJob {
            input: PhotoInput {
                image: crop(&into.photo, c),
                mask: Some(mask_image(&alpha, c.side)),
                strength: into.strength,
            },
            image_name: into.name.clone(),
            mask_name: Some(format!(
                "{}, crop {}×{} at {},{}",
                match &into.mask {
                    Some(_) => "given".to_string(),
                    None => format!("automatic ({})", regions.join("+")),
                },
                c.side,
                c.side,
                c.x,
                c.y
            )),
            controls: Vec::new(),
        };
        Ok((
            job,
            Paste {
                photo: into.photo.clone(),
                crop: c,
                alpha,
            },
        ))
    }
}

/// The parts of the target face that are repainted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Skin, brows, eyes, glasses, ears, earrings, nose, mouth and lips.
    Face,
    Hair,
    Neck,
}

impl Region {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "face" => Some(Self::Face),
            "hair" => Some(Self::Hair),
            "neck" => Some(Self::Neck),
            _ => None,
        }
    }

    /// Its BiSeNet classes (face-parsing.PyTorch's 19 labels).
    fn labels(self) -> &'static [u8] {
        match self {
            Self::Face => &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13],
            Self::Hair => &[17],
            Self::Neck => &[14, 15],
        }
    }
}

/// How the mask and the crop are made.
#[derive(Clone, Debug, PartialEq)]
pub struct IntoSettings {
    pub regions: Vec<Region>,
    /// Grow the regions by this many photo pixels.
    pub dilate: usize,
    /// Blend over this many photo pixels on each side of the mask's edge.
    pub feather: usize,
    /// The crop's side is the face box's larger side times `1 + 2 · margin`.
    pub margin: f64,
}

impl Default for IntoSettings {
    fn default() -> Self {
        Self {
            regions: vec![Region::Face],
            dilate: 8,
            feather: 8,
            margin: 0.6,
        }
    }
}

/// A square of the photo, in its pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub x: usize,
    pub y: usize,
    pub side: usize,
}

/// The square around a face box (`[x1, y1, x2, y2]`): centred on it, `margin` of its larger
/// side added on each side, moved inside the photo and at most its shorter side.
pub fn crop_box(face: [f32; 4], width: usize, height: usize, margin: f64) -> CropBox {
    let [x1, y1, x2, y2] = face.map(f64::from);
    let larger = (x2 - x1).max(y2 - y1).max(1.0);
    let side =
        ((larger * (1.0 + 2.0 * margin)).round() as usize).clamp(1, width.min(height).max(1));
    let place = |centre: f64, limit: usize| -> usize {
        let start = (centre - side as f64 / 2.0).round();
        start.clamp(0.0, (limit - side) as f64) as usize
    };
    CropBox {
        x: place((x1 + x2) / 2.0, width),
        y: place((y1 + y2) / 2.0, height),
        side,
    }
}

/// The crop's pixels.
pub fn crop(photo: &RgbImage, c: CropBox) -> RgbImage {
    let mut data = Vec::with_capacity(c.side * c.side * 3);
    for y in c.y..c.y + c.side {
        let row = (y * photo.width + c.x) * 3;
        data.extend_from_slice(&photo.data[row..row + c.side * 3]);
    }
    RgbImage {
        width: c.side,
        height: c.side,
        data,
    }
}

/// The blending weight of each crop pixel (`side²`, in [0, 1]) from a square BiSeNet label map
/// of the crop (`size²`, as [`crate::bisenet::BiSeNet::label_map`] gives): the regions at the
/// crop's size (nearest), grown by `dilate`, then box-blurred twice over `feather` pixels.
pub fn alpha_mask(labels: &[u8], size: usize, side: usize, s: &IntoSettings) -> Result<Vec<f32>> {
    if labels.len() != size * size || size == 0 {
        return Err(Error::InvalidRequest(format!(
            "a {size}×{size} label map has {} labels",
            labels.len()
        )));
    }
    let wanted: Vec<u8> = s.regions.iter().flat_map(|r| r.labels().to_vec()).collect();
    let mut mask: Vec<f32> = (0..side * side)
        .map(|i| {
            let (y, x) = (i / side * size / side, i % side * size / side);
            f32::from(u8::from(wanted.contains(&labels[y * size + x])))
        })
        .collect();
    if !mask.iter().any(|&v| v > 0.0) {
        return Err(Error::Image {
            name: "target photo".into(),
            reason: "none of the chosen regions was found on the face".into(),
        });
    }
    mask = separable(&mask, side, s.dilate, |w| {
        w.iter().cloned().fold(0.0, f32::max)
    });
    let mean = |w: &[f32]| w.iter().sum::<f32>() / w.len() as f32;
    for _ in 0..2 {
        mask = separable(&mask, side, s.feather / 2, mean);
    }
    Ok(mask)
}

/// `f` over a `(2r + 1)`-wide window along the rows, then the columns (clipped at the edges).
fn separable(x: &[f32], side: usize, r: usize, f: impl Fn(&[f32]) -> f32) -> Vec<f32> {
    if r == 0 {
        return x.to_vec();
    }
    let pass = |x: &[f32], transpose: bool| -> Vec<f32> {
        let at = |line: usize, i: usize| {
            if transpose {
                i * side + line
            } else {
                line * side + i
            }
        };
        let mut out = vec![0f32; x.len()];
        let mut window = Vec::with_capacity(2 * r + 1);
        for line in 0..side {
            for i in 0..side {
                window.clear();
                let (lo, hi) = (i.saturating_sub(r), (i + r).min(side - 1));
                window.extend((lo..=hi).map(|j| x[at(line, j)]));
                out[at(line, i)] = f(&window);
            }
        }
        out
    };
    pass(&pass(x, false), true)
}

/// The inpainting mask of an alpha mask: white wherever the result will show.
pub fn mask_image(alpha: &[f32], side: usize) -> RgbImage {
    RgbImage {
        width: side,
        height: side,
        data: alpha
            .iter()
            .flat_map(|&a| if a > 0.0 { [255; 3] } else { [0; 3] })
            .collect(),
    }
}

/// The photo and where a generated crop goes back.
#[derive(Clone, Debug)]
pub struct Paste {
    pub photo: RgbImage,
    pub crop: CropBox,
    /// `side²` weights in [0, 1].
    pub alpha: Vec<f32>,
}

impl Paste {
    /// A generated image with its picture pasted back into the photo.
    pub fn pasted(&self, mut g: GeneratedImage) -> GeneratedImage {
        g.image = self.apply(&g.image);
        g
    }

    /// The photo with `generated` (any size: resized to the crop with LANCZOS) blended in
    /// through the alpha mask; pixels of weight 0 are copied.
    pub fn apply(&self, generated: &RgbImage) -> RgbImage {
        let c = self.crop;
        let g = resize(generated, c.side, c.side, Filter::Lanczos);
        let mut out = self.photo.clone();
        for (i, &a) in self.alpha.iter().enumerate() {
            if a <= 0.0 {
                continue;
            }
            let (y, x) = (c.y + i / c.side, c.x + i % c.side);
            let o = (y * out.width + x) * 3;
            for ch in 0..3 {
                let (p, q) = (f32::from(out.data[o + ch]), f32::from(g.data[i * 3 + ch]));
                out.data[o + ch] = (p + (q - p) * a.min(1.0)).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }
}

/// A sink that pastes each finished image back into the photo before handing it on (previews
/// stay the crop).
pub struct PasteSink<'a> {
    pub inner: &'a mut dyn Sink,
    pub paste: &'a Paste,
}

impl Sink for PasteSink<'_> {
    fn phase_started(&mut self, phase: Phase, image: Option<usize>) {
        self.inner.phase_started(phase, image);
    }
    fn phase_finished(&mut self, phase: Phase, image: Option<usize>) {
        self.inner.phase_finished(phase, image);
    }
    fn step(&mut self, image: usize, step: usize, total: usize) {
        self.inner.step(image, step, total);
    }
    fn wants_preview(&mut self, image: usize, step: usize, total: usize) -> bool {
        self.inner.wants_preview(image, step, total)
    }
    fn preview(&mut self, image: usize, step: usize, preview: RgbImage) {
        // The crop as it is: pasting a small preview into a large photo at every preview
        // would cost more than the step.
        self.inner.preview(image, step, preview);
    }
    fn warning(&mut self, text: &str) {
        self.inner.warning(text);
    }
    fn info(&mut self, text: &str) {
        self.inner.info(text);
    }
    fn cancelled(&mut self) -> bool {
        self.inner.cancelled()
    }
    fn image(&mut self, image: &GeneratedImage) -> Result<()> {
        self.inner.image(&self.paste.pasted(image.clone()))
    }
    fn candidates(&mut self, candidates: &[Candidate]) {
        self.inner.candidates(candidates);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crop_is_centred_inside_the_photo_and_square() {
        // A 40×50 face at (100, 60) in a 301×203 photo: side 50 · 2.2 = 110.
        let c = crop_box([100.0, 60.0, 140.0, 110.0], 301, 203, 0.6);
        assert_eq!(
            c,
            CropBox {
                x: 65,
                y: 30,
                side: 110
            }
        );
        // Near the corner it moves inside; larger than the photo it shrinks to the short side.
        assert_eq!(crop_box([0.0, 0.0, 20.0, 20.0], 301, 203, 0.6).x, 0);
        let c = crop_box([250.0, 150.0, 300.0, 200.0], 301, 203, 0.6);
        assert_eq!((c.x + c.side, c.y + c.side), (301, 203));
        assert_eq!(crop_box([0.0, 0.0, 300.0, 200.0], 301, 203, 0.6).side, 203);
    }

    #[test]
    fn paste_keeps_every_pixel_outside_the_mask() {
        let photo = RgbImage {
            width: 7,
            height: 5,
            data: (0..105).map(|v| v as u8).collect(),
        };
        let crop = CropBox {
            x: 2,
            y: 1,
            side: 3,
        };
        let mut alpha = vec![0.0; 9];
        alpha[4] = 1.0;
        alpha[5] = 0.5;
        let paste = Paste {
            photo: photo.clone(),
            crop,
            alpha,
        };
        let white = RgbImage {
            width: 3,
            height: 3,
            data: vec![255; 27],
        };
        let out = paste.apply(&white);
        let centre = ((1 + 1) * 7 + 2 + 1) * 3;
        let half = ((1 + 1) * 7 + 2 + 2) * 3;
        for i in 0..out.data.len() {
            match i {
                _ if (centre..centre + 3).contains(&i) => assert_eq!(out.data[i], 255),
                _ if (half..half + 3).contains(&i) => {
                    let p = f32::from(photo.data[i]);
                    assert_eq!(out.data[i], (p + (255.0 - p) * 0.5).round() as u8);
                }
                _ => assert_eq!(out.data[i], photo.data[i], "pixel byte {i}"),
            }
        }
    }

    #[test]
    fn the_mask_grows_and_feathers_in_photo_pixels() {
        let settings = IntoSettings {
            regions: vec![Region::Face],
            dilate: 2,
            feather: 4,
            margin: 0.6,
        };
        // One skin label in the middle of a 4×4 map, at a 20-pixel crop: a 5×5 block.
        let mut labels = vec![0u8; 16];
        labels[5] = 1;
        let alpha = alpha_mask(&labels, 4, 20, &settings).unwrap();
        let at = |x: usize, y: usize| alpha[y * 20 + x];
        assert_eq!(at(7, 7), 1.0, "inside, away from the edge");
        assert!(at(12, 7) > 0.0 && at(12, 7) < 1.0, "the feathered edge");
        assert_eq!(at(19, 19), 0.0, "far outside");
        let none = alpha_mask(&[0u8; 16], 4, 20, &settings);
        assert!(none.is_err());
    }
}
