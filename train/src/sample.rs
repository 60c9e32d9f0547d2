//! One training sample as the official `MyDataset.__getitem__` (`utils.py:51-178`) builds it:
//! the image for the VAE (resized by its short side with Pillow's bilinear filter, centre-cropped
//! with torchvision's rounding, in [-1, 1]), the CLIP input of the whole image (zeroed when the
//! text is dropped), the facial regions chosen and paired as upstream (label order Face, Eye,
//! Ear, Nose, Mouth; a region whose word the caption lacks is dropped), each region's mask and
//! CLIP input (padded to 5 with zeros), the person's foreground mask, and the text.

use consistentid_core::bisenet::labels::official_name;
use consistentid_core::bisenet::regions::{facial_regions, region_image, without_background};
use consistentid_core::clip::ClipTokenizer;
use consistentid_core::clip::image_processor::preprocess;
use consistentid_core::consistentid::training_text::{TrainingText, training_text};
use consistentid_core::image::RgbImage;
use consistentid_core::image::pil::{Filter, resize};

use crate::{Result, TrainError};

/// Regions per sample (`max_num_facials`).
pub const MAX_FACIALS: usize = 5;

/// What a dataset record holds, loaded.
pub struct SampleSource<'a> {
    /// The photo (FGID's `resize_IMG`, usually `size`²).
    pub image: &'a RgbImage,
    /// The BiSeNet label map, `size`² (as upstream, it is not resized).
    pub labels: &'a [u8],
    /// `vqa_llva`: the general caption.
    pub caption: &'a str,
    /// `vqa_llva_more_face_detail`: the facial caption.
    pub facial_caption: &'a str,
    /// The normalised ArcFace embedding, or none (zeros, as upstream).
    pub face_id: Option<&'a [f32]>,
    /// This sample's text-drop coin came up.
    pub dropped: bool,
}

/// The tensors of one sample (row-major, f32).
#[derive(Clone, Debug)]
pub struct Sample {
    /// `[3, size, size]` in [-1, 1].
    pub image: Vec<f32>,
    /// `[3, clip, clip]`, zeros when the text is dropped.
    pub clip_image: Vec<f32>,
    /// `MAX_FACIALS × [3, clip, clip]`, zeros for padding.
    pub region_images: Vec<Vec<f32>>,
    /// `[MAX_FACIALS, size, size]` in {0, 1}.
    pub facial_masks: Vec<f32>,
    /// `[size, size]`: `WithoutBackground`.
    pub foreground: Vec<f32>,
    pub text: TrainingText,
    /// The embedding, zeros when none.
    pub face_id: Vec<f32>,
}

/// torchvision `Resize(size)` (bilinear, by the short side) + `CenterCrop(size)` on a Pillow
/// image, then `ToTensor` and `Normalize(0.5, 0.5)`.
fn vae_input(img: &RgbImage, size: usize) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let (nw, nh) = if w <= h {
        (size, size * h / w)
    } else {
        (size * w / h, size)
    };
    let resized = if (nw, nh) == (w, h) {
        img.clone()
    } else {
        resize(img, nw, nh, Filter::Bilinear)
    };
    // torchvision: int(round((h - size) / 2)), Python rounding half to even.
    let offset = |n: usize| ((n - size) as f64 / 2.0).round_ties_even() as usize;
    let (top, left) = (offset(nh), offset(nw));
    let mut out = vec![0f32; 3 * size * size];
    for y in 0..size {
        for x in 0..size {
            let i = ((top + y) * nw + left + x) * 3;
            for c in 0..3 {
                let v = f32::from(resized.data[i + c]) / 255.0;
                out[c * size * size + y * size + x] = (v - 0.5) / 0.5;
            }
        }
    }
    out
}

/// Builds a sample; a record without a background label or with a label map of another size
/// is refused with the reason (the official loader raises `KeyError` or misaligns).
pub fn build(
    src: &SampleSource,
    tokenizer: &ClipTokenizer,
    size: usize,
    clip_size: usize,
    id_dim: usize,
) -> Result<Sample> {
    if src.labels.len() != size * size {
        return Err(TrainError::Sample(format!(
            "the label map has {} pixels, not {size}×{size}",
            src.labels.len()
        )));
    }
    if src.image.width < size || src.image.height < size {
        return Err(TrainError::Sample(format!(
            "the image is {}×{}, smaller than {size}×{size}",
            src.image.width, src.image.height
        )));
    }
    if !src.labels.contains(&0) {
        return Err(TrainError::Sample(
            "the label map has no background (label 0)".into(),
        ));
    }
    let regions = facial_regions(src.labels, size, size);
    let keys: Vec<String> = regions
        .iter()
        .map(|(_, l, _)| official_name(*l).to_string())
        .collect();
    let text = training_text(
        src.caption,
        src.facial_caption,
        &keys,
        src.dropped,
        tokenizer,
        MAX_FACIALS,
    )?;
    let plane = 3 * clip_size * clip_size;
    let mut facial_masks = vec![0f32; MAX_FACIALS * size * size];
    let mut region_images = vec![vec![0f32; plane]; MAX_FACIALS];
    let kept = regions
        .iter()
        .filter(|(_, l, _)| text.kept_regions.iter().any(|k| k == official_name(*l)));
    for (slot, (_, _, mask)) in kept.take(MAX_FACIALS).enumerate() {
        for (i, &m) in mask.data.iter().enumerate() {
            facial_masks[slot * size * size + i] = if m { 1.0 } else { 0.0 };
        }
        region_images[slot] = preprocess(&region_image(src.image, mask), clip_size);
    }
    let foreground = without_background(src.labels, size, size)
        .data
        .iter()
        .map(|&m| if m { 1.0 } else { 0.0 })
        .collect();
    let clip_image = if src.dropped {
        vec![0f32; plane]
    } else {
        preprocess(src.image, clip_size)
    };
    let face_id = match src.face_id {
        Some(v) if v.len() == id_dim => v.to_vec(),
        Some(v) => {
            return Err(TrainError::Sample(format!(
                "the face embedding has {} values, not {id_dim}",
                v.len()
            )));
        }
        None => vec![0f32; id_dim],
    };
    Ok(Sample {
        image: vae_input(src.image, size),
        clip_image,
        region_images,
        facial_masks,
        foreground,
        text,
        face_id,
    })
}
