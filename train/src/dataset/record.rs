//! One FGID record: the file names the official scripts give a photo's derived files and the
//! JSON `train.py` reads (`shared/spec/train-eval.md` §B2).

use serde::{Deserialize, Serialize};

/// The record as the official scripts write it (`FGID_mask.py`, `FGID_caption.py`,
/// `FGID_faceid_embeds.py`, merged by `FGID_fuse_JSON.py`). Paths are relative to the
/// dataset's roots, with `/` separators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FgidRecord {
    #[serde(rename = "origin_IMG")]
    pub origin_img: String,
    #[serde(rename = "resize_IMG")]
    pub resize_img: String,
    #[serde(rename = "parsing_color_IMG")]
    pub parsing_color_img: String,
    #[serde(rename = "parsing_mask_IMG")]
    pub parsing_mask_img: String,
    pub vqa_llva: String,
    pub vqa_llva_more_face_detail: String,
    /// Left out when no face was found in the resized photo (training then uses zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_embed_file_resize: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_embed_file_origin: Option<String>,
}

/// Where one photo's files go, relative to the dataset folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    /// The photo itself, relative to the images folder (`15/0062963.png`).
    pub origin: String,
    pub resize: String,
    pub color: String,
    pub mask: String,
    pub faceid_resize: String,
    pub faceid_origin: String,
    /// The per-photo JSON (`FGID_JSON/<rel>/<stem>.json`): written last, so its presence marks
    /// a finished photo.
    pub json: String,
}

impl Names {
    /// The names for the photo at `origin` (relative, `/`-separated). The official scripts cut
    /// four characters off the name (`.png`, `.jpg`); this takes the stem, so `.jpeg` and
    /// `.webp` work too.
    pub fn of(origin: &str) -> Self {
        let (dir, file) = match origin.rsplit_once('/') {
            Some((d, f)) => (format!("{d}/"), f),
            None => (String::new(), origin),
        };
        let stem = match file.rfind('.') {
            Some(i) if i > 0 => &file[..i],
            _ => file,
        };
        let at = |suffix: &str| format!("{dir}{stem}{suffix}");
        Self {
            origin: origin.to_string(),
            resize: at("_resize.png"),
            color: at("_color.png"),
            mask: at("_mask.png"),
            faceid_resize: at("_resize_faceid.bin"),
            faceid_origin: at("_faceid.bin"),
            json: at(".json"),
        }
    }

    /// The record for these names, the captions and which identities were found.
    pub fn record(
        &self,
        captions: &super::captions::Captions,
        id_resize: bool,
        id_origin: bool,
    ) -> FgidRecord {
        FgidRecord {
            origin_img: self.origin.clone(),
            resize_img: self.resize.clone(),
            parsing_color_img: self.color.clone(),
            parsing_mask_img: self.mask.clone(),
            vqa_llva: captions.people.clone(),
            vqa_llva_more_face_detail: captions.face.clone(),
            id_embed_file_resize: id_resize.then(|| self.faceid_resize.clone()),
            id_embed_file_origin: id_origin.then(|| self.faceid_origin.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_official_scripts() {
        let n = Names::of("15/0062963.png");
        assert_eq!(n.resize, "15/0062963_resize.png");
        assert_eq!(n.mask, "15/0062963_mask.png");
        assert_eq!(n.color, "15/0062963_color.png");
        assert_eq!(n.faceid_resize, "15/0062963_resize_faceid.bin");
        assert_eq!(n.faceid_origin, "15/0062963_faceid.bin");
        assert_eq!(n.json, "15/0062963.json");
        assert_eq!(Names::of("a.b.jpeg").resize, "a.b_resize.png");
    }

    #[test]
    fn a_record_without_faces_leaves_the_keys_out() {
        let captions = super::super::captions::Captions::template();
        let r = Names::of("x.png").record(&captions, false, true);
        let json = serde_json::to_value(&r).unwrap();
        assert!(json.get("id_embed_file_resize").is_none());
        assert_eq!(json["id_embed_file_origin"], "x_faceid.bin");
        assert_eq!(json["resize_IMG"], "x_resize.png");
        let back: FgidRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
}
