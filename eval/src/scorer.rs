//! The per-image metrics on the networks of a ConsistentID model folder, each against one
//! reference photo:
//! - **FaceSim (ArcFace)**: cos of buffalo_l's ArcFace embeddings of the highest-scoring SCRFD
//!   face of each image, the networks fed as insightface intends (`FaceAnalysis.get` on a
//!   `cv2.imread` image); an image without a face scores 0 and counts as not detected.
//! - **CLIP-I**: cos of CLIP ViT-H/14 `image_embeds` (the folder's `image_encoder/`) of the
//!   whole images, `CLIPImageProcessor`'s preprocessing.
//! - **FGIS**, reconstructed from the official evaluation helpers (train-eval spec C2): BiSeNet
//!   parses both images (512² bilinear); for each facial region (face, eyes, ears, nose,
//!   mouth) present in both, the region composited over black, cropped to its pixels brighter
//!   than 10, embedded by the region encoder (CLIP ViT-H `image_embeds`), cos; FGIS is the mean
//!   over the common regions.
//! - **CLIP-T** and a second **CLIP-I**, with a whole CLIP given apart (`--clip`, e.g.
//!   `openai/clip-vit-large-patch14` as FastComposer and PhotoMaker report): cos of the user
//!   prompt's projected text embedding and the image's (CLIP-T), and of the two images' (CLIP-I).
//! - **FaceSim (FaceNet)** as FastComposer computes it, with facenet-pytorch's networks given
//!   apart (`--facenet`): MTCNN's first face, `extract_face` 160², InceptionResnetV1 (vggface2),
//!   max(dot, 0); an image without a face scores 0.
//! - **FID** (set-level), with pytorch-fid's Inception given apart (`--fid`).
//! - **DINO**, with a ViT given apart (`--dino`, `facebook/dino-vits16` as DreamBooth and
//!   PhotoMaker report): cos of the two images' class tokens.

use burn::tensor::{DType, Device, Tensor, TensorData};
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::bisenet::labels::REGIONS;
use consistentid_core::bisenet::preprocess::SIZE as PARSING_SIZE;
use consistentid_core::bisenet::regions::{facial_regions, region_image};
use consistentid_core::clip::image_processor;
use consistentid_core::clip::{ClipModel, ClipVisionModelWithProjection};
use consistentid_core::face::ChannelOrder;
use consistentid_core::face::analysis::FaceAnalysis;
use consistentid_core::face::facenet::{InceptionResnetV1, extract_face};
use consistentid_core::face::likeness::cosine;
use consistentid_core::face::mtcnn::Mtcnn;
use consistentid_core::image::RgbImage;
use consistentid_core::inception::FidInception;
use consistentid_core::pipeline::consistentid::{IMAGE_ENCODER, PARSING};
use consistentid_core::vit::ViTModel;
use consistentid_core::weights::WeightSource;
use consistentid_core::{Error, Result};

use crate::crop::crop_bright;

/// The brightness threshold of the official `crop_image`.
pub const CROP_THRESHOLD: u8 = 10;

/// What each metric is computed with, for the report.
pub const NETWORKS: [(&str, &str); 3] = [
    (
        "FaceSim (ArcFace)",
        "insightface buffalo_l: SCRFD det_10g (640², highest score) → 5-point norm_crop 112² → ArcFace w600k_r50, cosine; no face = 0",
    ),
    (
        "CLIP-I",
        "CLIP ViT-H/14 image_embeds (the model folder's image_encoder/), CLIPImageProcessor (224² bicubic, centre crop), cosine",
    ),
    (
        "FGIS",
        "BiSeNet face parsing (512² bilinear) → face, eyes, ears, nose, mouth present in both → region over black, cropped to pixels > 10 → CLIP ViT-H/14 image_embeds, cosine, mean over regions (reconstruction of the paper's metric, train-eval spec C2)",
    ),
];

/// FGIS's region encoder (train-eval spec C2: configurable, the report names it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RegionEncoder {
    /// The model folder's CLIP ViT-H/14 `image_embeds` (the default).
    #[default]
    ClipVitH,
    /// The `--clip` model's projected image embedding.
    Clip,
    /// DINO's class token (`--dino`).
    Dino,
}

impl RegionEncoder {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "clip-vit-h" => Some(Self::ClipVitH),
            "clip" => Some(Self::Clip),
            "dino" => Some(Self::Dino),
            _ => None,
        }
    }
}

/// A whole image's embedding and its facial regions' (word, embedding).
type Embedded = (Vec<f32>, Vec<(&'static str, Vec<f32>)>);

/// The networks, loaded once.
pub struct Scorer {
    pub faces: FaceAnalysis,
    pub clip: ClipVisionModelWithProjection,
    pub bisenet: BiSeNet,
    /// A whole CLIP for CLIP-T (and CLIP-I on it), with the name the report gives it.
    pub clip_model: Option<(String, ClipModel)>,
    /// DINO's ViT, with its name.
    pub dino: Option<(String, ViTModel)>,
    /// FaceNet (MTCNN + InceptionResnetV1), with its name.
    pub facenet: Option<(String, Mtcnn, InceptionResnetV1)>,
    /// The FID network, with its name (set-level: see `fid_features`).
    pub fid: Option<(String, FidInception)>,
    /// The network FGIS embeds the facial regions with.
    pub region_encoder: RegionEncoder,
    pub device: Device,
}

/// What is kept of a reference photo.
pub struct Reference {
    /// ArcFace embedding of its best face (`None`: no face, FaceSim is not defined).
    pub face: Option<Vec<f32>>,
    /// CLIP embedding of the whole photo.
    pub clip: Vec<f32>,
    /// (region word, CLIP embedding) of its facial regions.
    pub regions: Vec<(&'static str, Vec<f32>)>,
    /// Its embedding by the `--clip` model.
    pub clip_model: Option<Vec<f32>>,
    /// Its DINO class token.
    pub dino: Option<Vec<f32>>,
    /// Its FaceNet embedding (`None`: no `--facenet`, or MTCNN found no face).
    pub facenet: Option<Vec<f32>>,
}

/// The metrics of one image against its reference.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageScores {
    /// ArcFace cosine (0 when no face was found); `None` when the reference has no face.
    pub facesim_arcface: Option<f32>,
    pub face_detected: bool,
    pub clip_i: f32,
    /// Mean over the common regions; `None` when the two images share none.
    pub fgis: Option<f32>,
    /// (region word, cosine) of each common region.
    pub fgis_regions: Vec<(String, f32)>,
    /// Regions of the reference missing from this image.
    pub regions_missing: Vec<String>,
    /// Prompt ↔ image with the `--clip` model (`None` without it or without a prompt).
    #[serde(default)]
    pub clip_t: Option<f32>,
    /// Reference ↔ image with the `--clip` model.
    #[serde(default)]
    pub clip_i_clip: Option<f32>,
    /// Reference ↔ image with DINO's ViT (`None` without `--dino`).
    #[serde(default)]
    pub dino: Option<f32>,
    /// FaceNet FaceSim (0 when MTCNN finds no face in the image; `None` without `--facenet`
    /// or when the reference has no face).
    #[serde(default)]
    pub facesim_facenet: Option<f32>,
}

impl Scorer {
    /// The networks of a ConsistentID model folder (buffalo_l, `image_encoder/`,
    /// `face_parsing.pth`); the error names the file that is missing.
    pub fn load(source: &dyn WeightSource, device: &Device) -> Result<Self> {
        let faces =
            FaceAnalysis::load(source, ChannelOrder::Corrected, device)?.ok_or_else(|| {
                Error::MissingFile {
                    path: source.display_path(consistentid_core::face::analysis::DETECTOR),
                }
            })?;
        let clip =
            ClipVisionModelWithProjection::load(source, IMAGE_ENCODER, None, DType::F32, device)?;
        let bisenet = BiSeNet::load(
            &source.read(PARSING)?,
            &source.display_path(PARSING),
            device,
        )?;
        Ok(Self {
            faces,
            clip,
            bisenet,
            clip_model: None,
            dino: None,
            facenet: None,
            fid: None,
            region_encoder: RegionEncoder::ClipVitH,
            device: device.clone(),
        })
    }

    /// What each metric is computed with, for the report (the `--clip` model named).
    pub fn networks(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = NETWORKS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let encoder = match (self.region_encoder, &self.clip_model, &self.dino) {
            (RegionEncoder::Clip, Some((name, _)), _) => Some(format!("{name} image embeds")),
            (RegionEncoder::Dino, _, Some((name, _))) => Some(format!("{name} class token")),
            _ => None,
        };
        if let (Some(encoder), Some(fgis)) = (encoder, out.iter_mut().find(|(k, _)| k == "FGIS")) {
            fgis.1 = fgis.1.replace(
                "CLIP ViT-H/14 image_embeds, cosine",
                &format!("{encoder} (--fgis-encoder), cosine"),
            );
        }
        if let Some((name, m)) = &self.clip_model {
            let text = format!(
                "{name} (text and vision towers, projection {}), CLIPImageProcessor ({}²); CLIP-T: the user prompt (77 tokens, truncated) against the image; CLIP-I: reference against image; cosine",
                m.projection_dim,
                m.vision.image_size()
            );
            out.push(("CLIP-T / CLIP-I (--clip)".into(), text));
        }
        if let Some((name, _, _)) = &self.facenet {
            out.push((
                "FaceSim (FaceNet)".into(),
                format!(
                    "{name}: facenet-pytorch MTCNN (160, margin 0, min face 20, thresholds 0.6/0.7/0.7, factor 0.709), first face → extract_face 160² bilinear → InceptionResnetV1, max(dot, 0); no face = 0 (FastComposer's rule)"
                ),
            ));
        }
        if let Some((name, _)) = &self.fid {
            out.push((
                "FID".into(),
                format!(
                    "{name}: pytorch-fid InceptionV3 pool features (ToTensor, 299² bilinear, 2x − 1), Gaussian fit per set, Fréchet distance in f64 (scipy sqrtm's formula) between the scored images and the real set"
                ),
            ));
        }
        if let Some((name, m)) = &self.dino {
            out.push((
                "DINO".into(),
                format!(
                    "{name}: ViT class token (after the final layer norm), ViTImageProcessor ({}² bilinear, ImageNet normalisation), cosine of reference and image",
                    m.image_size
                ),
            ));
        }
        out
    }

    /// FaceNet's embedding of the first face MTCNN finds (`Ok(None)`: no face or no network).
    fn facenet_image(&self, img: &RgbImage) -> Result<Option<Vec<f32>>> {
        let Some((_, mtcnn, net)) = &self.facenet else {
            return Ok(None);
        };
        let Some(first) = mtcnn.detect(img)?.into_iter().next() else {
            return Ok(None);
        };
        let face = extract_face(img, &first)?;
        Ok(net.embed(&[face])?.into_iter().next())
    }

    /// The FID network's features of `images` (`Ok(None)` without `--fid`).
    pub fn fid_features(&self, images: &[RgbImage]) -> Result<Option<Vec<Vec<f32>>>> {
        match &self.fid {
            Some((_, net)) => Ok(Some(net.features(images)?)),
            None => Ok(None),
        }
    }

    /// DINO's class token of one image.
    fn dino_image(&self, img: &RgbImage) -> Result<Option<Vec<f32>>> {
        let Some((_, m)) = &self.dino else {
            return Ok(None);
        };
        Ok(m.embed(std::slice::from_ref(img), &self.device)?
            .into_iter()
            .next())
    }

    /// The `--clip` model's embedding of one image.
    fn clip_model_image(&self, img: &RgbImage) -> Result<Option<Vec<f32>>> {
        let Some((_, m)) = &self.clip_model else {
            return Ok(None);
        };
        Ok(m.image_embeds(std::slice::from_ref(img), &self.device)?
            .into_iter()
            .next())
    }

    /// CLIP `image_embeds` of several images, one batch.
    fn clip_embeds(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.clip.image_size();
        let mut pixels = Vec::with_capacity(images.len() * 3 * size * size);
        for img in images {
            pixels.extend(image_processor::preprocess(img, size));
        }
        let x: Tensor<4> = Tensor::from_data(
            TensorData::new(pixels, [images.len(), 3, size, size]),
            &self.device,
        );
        let embeds = self.clip.forward(x)?.image_embeds;
        let dim = embeds.dims()[1];
        let values = embeds
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::Readback(format!("{e:?}")))?;
        Ok(values.chunks(dim).map(<[f32]>::to_vec).collect())
    }

    /// The whole image and its facial regions (word, crop), CLIP-embedded in one batch.
    fn embed(&self, img: &RgbImage) -> Result<Embedded> {
        let labels = self.bisenet.label_map(img, &self.device)?;
        let mut words = Vec::new();
        let mut crops = vec![img.clone()];
        for (region, _, mask) in facial_regions(&labels, PARSING_SIZE, PARSING_SIZE) {
            if let Some(crop) = crop_bright(&region_image(img, &mask), CROP_THRESHOLD) {
                words.push(region.word);
                crops.push(crop);
            }
        }
        let embeds = match (self.region_encoder, &self.clip_model, &self.dino) {
            (RegionEncoder::ClipVitH, _, _) => self.clip_embeds(&crops)?,
            (RegionEncoder::Clip, Some((_, m)), _) => {
                let mut e = self.clip_embeds(&crops[..1])?;
                e.extend(m.image_embeds(&crops[1..], &self.device)?);
                e
            }
            (RegionEncoder::Dino, _, Some((_, m))) => {
                let mut e = self.clip_embeds(&crops[..1])?;
                e.extend(m.embed(&crops[1..], &self.device)?);
                e
            }
            (encoder, _, _) => {
                return Err(Error::InvalidRequest(format!(
                    "the FGIS region encoder {encoder:?} needs its network (--clip or --dino)"
                )));
            }
        };
        let mut embeds = embeds.into_iter();
        let whole = embeds.next().unwrap_or_default();
        Ok((whole, words.into_iter().zip(embeds).collect()))
    }

    /// Embeds a reference photo.
    pub fn reference(&self, img: &RgbImage, name: &str) -> Result<Reference> {
        let face = match self.faces.identify(img, name, Default::default(), false) {
            Ok(id) => Some(id.embedding),
            Err(Error::Image { reason, .. }) if reason == "no face found" => None,
            Err(e) => return Err(e),
        };
        let (clip, regions) = self.embed(img)?;
        Ok(Reference {
            face,
            clip,
            regions,
            clip_model: self.clip_model_image(img)?,
            dino: self.dino_image(img)?,
            facenet: self.facenet_image(img)?,
        })
    }

    /// Scores `img` against `reference` (and `prompt`, the user's, for CLIP-T).
    pub fn score(
        &self,
        reference: &Reference,
        img: &RgbImage,
        name: &str,
        prompt: Option<&str>,
    ) -> Result<ImageScores> {
        let (facesim, detected) = match self.faces.identify(img, name, Default::default(), false) {
            Ok(id) => (
                reference.face.as_ref().map(|r| cosine(r, &id.embedding)),
                true,
            ),
            Err(Error::Image { reason, .. }) if reason == "no face found" => {
                (reference.face.as_ref().map(|_| 0.0), false)
            }
            Err(e) => return Err(e),
        };
        let (clip, regions) = self.embed(img)?;
        let mut fgis_regions = Vec::new();
        let mut missing = Vec::new();
        for region in REGIONS.iter().map(|r| r.word) {
            let want = reference.regions.iter().find(|(w, _)| *w == region);
            let got = regions.iter().find(|(w, _)| *w == region);
            match (want, got) {
                (Some((_, a)), Some((_, b))) => {
                    fgis_regions.push((region.to_string(), cosine(a, b)))
                }
                (Some(_), None) => missing.push(region.to_string()),
                _ => {}
            }
        }
        let fgis = (!fgis_regions.is_empty())
            .then(|| fgis_regions.iter().map(|(_, s)| s).sum::<f32>() / fgis_regions.len() as f32);
        let image = self.clip_model_image(img)?;
        let clip_t = match (&self.clip_model, &image, prompt) {
            (Some((_, m)), Some(i), Some(p)) => m
                .text_embeds(&[p], &self.device)?
                .first()
                .map(|t| cosine(t, i)),
            _ => None,
        };
        let clip_i_clip = match (&reference.clip_model, &image) {
            (Some(r), Some(i)) => Some(cosine(r, i)),
            _ => None,
        };
        let dino = match (&reference.dino, self.dino_image(img)?) {
            (Some(r), Some(i)) => Some(cosine(r, &i)),
            _ => None,
        };
        let facesim_facenet = match (&self.facenet, &reference.facenet) {
            (Some(_), Some(r)) => Some(self.facenet_image(img)?.map_or(0.0, |e| {
                e.iter().zip(r).map(|(a, b)| a * b).sum::<f32>().max(0.0)
            })),
            _ => None,
        };
        Ok(ImageScores {
            facesim_arcface: facesim,
            face_detected: detected,
            clip_i: cosine(&reference.clip, &clip),
            fgis,
            fgis_regions,
            regions_missing: missing,
            clip_t,
            clip_i_clip,
            dino,
            facesim_facenet,
        })
    }
}
