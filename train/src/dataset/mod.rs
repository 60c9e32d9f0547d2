//! FGID-style training records from any folder of portraits (`shared/spec/train-eval.md` §B):
//! what the official `data/FGID_*.py` scripts make of one photo (the 512² resize, BiSeNet's
//! label map and its colour overlay, the ArcFace identities of the resized and the original
//! photo, the two captions) and the JSON record `train.py` reads. No I/O here: the
//! `consistentid dataset build` command walks the folder and writes the files.

pub mod captions;
pub mod overlay;
pub mod record;

use burn::tensor::Device;
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::face::analysis::FaceAnalysis;
use consistentid_core::face::choose::FaceChoice;
use consistentid_core::image::RgbImage;
use consistentid_core::image::pil::{Filter, resize};

use crate::Result;

/// The side the official scripts resize every photo to (ignoring its aspect ratio).
pub const SIZE: usize = 512;

/// BiSeNet's label for facial skin: a record without it has no facial region to learn from.
pub const FACE_LABEL: u8 = 1;

/// What the official scripts derive from one photo.
pub struct Prepared {
    /// `img.resize((512, 512), Image.BILINEAR)` (`FGID_mask.py:81-85`).
    pub resized: RgbImage,
    /// BiSeNet's argmax on the resized photo, `SIZE × SIZE` (`FGID_mask.py:88-92`).
    pub labels: Vec<u8>,
    /// The colour overlay `*_color.png` (`vis_parsing_maps`).
    pub overlay: RgbImage,
    /// insightface's `faces[0].normed_embedding` on the resized photo, `None` without a face
    /// (`FGID_faceid_embeds.py`: the key is then left out and training uses zeros).
    pub id_resize: Option<Vec<f32>>,
    /// The same on the original photo.
    pub id_origin: Option<Vec<f32>>,
}

impl Prepared {
    /// Whether BiSeNet found facial skin (label 1) anywhere.
    pub fn has_face_region(&self) -> bool {
        self.labels.contains(&FACE_LABEL)
    }

    /// Whether BiSeNet found background (label 0): training masks the loss by it, and the
    /// official trainer fails without it (`KeyError: 'WithoutBackground'`, its issue #54).
    pub fn has_background(&self) -> bool {
        self.labels.contains(&0)
    }
}

/// The networks the official scripts run: BiSeNet (`face_parsing.pth`) and buffalo_l, which
/// sees BGR photos as `cv2.imread` hands them (set its channel order accordingly).
pub struct Preparer<'a> {
    pub parser: &'a BiSeNet,
    pub faces: Option<&'a FaceAnalysis>,
    pub device: &'a Device,
}

impl Preparer<'_> {
    /// Resize, parse and embed one photo. `name` labels errors.
    pub fn prepare(&self, photo: &RgbImage, name: &str) -> Result<Prepared> {
        let resized = resize(photo, SIZE, SIZE, Filter::Bilinear);
        let labels = self.parser.label_map(&resized, self.device)?;
        let overlay = overlay::parsing_color(&resized, &labels);
        let embed = |img: &RgbImage| -> Result<Option<Vec<f32>>> {
            let Some(faces) = self.faces else {
                return Ok(None);
            };
            let identity = faces.identify(img, name, FaceChoice::BestScore, true)?;
            Ok(identity.face.map(|_| identity.embedding))
        };
        Ok(Prepared {
            id_resize: embed(&resized)?,
            id_origin: embed(photo)?,
            resized,
            labels,
            overlay,
        })
    }
}
