//! The two captions of a record: the official captioner's prompts (`FGID_caption.py`, LLaVA
//! 1.5 asked twice about the original photo), captions a person already has (JSON or CSV), and
//! the inference template as a stand-in (`shared/spec/train-eval.md` §B1, §B4).

use std::collections::HashMap;

use crate::{Result, TrainError};

/// `prompt1` of `FGID_caption.py`, verbatim (its line continuation leaves nine spaces) → `vqa_llva`.
pub const PROMPT_PEOPLE: &str = "Please describe the people in the image, including their gender,         age, clothing, facial expressions, and any other distinguishing features.";

/// `prompt2` of `FGID_caption.py`, verbatim → `vqa_llva_more_face_detail`.
pub const PROMPT_FACE: &str = "Describe this person's facial features for me, including         face, ears, eyes, nose, and mouth.";

/// The inference pipeline's facial caption, the stand-in when no captions are given.
pub const TEMPLATE_FACE: &str =
    "The person has one face, one nose, two eyes, two ears, and one mouth.";

/// A generic people caption to go with [`TEMPLATE_FACE`].
pub const TEMPLATE_PEOPLE: &str = "The image features a person.";

/// `vqa_llva` and `vqa_llva_more_face_detail` of one photo.
#[derive(Clone, Debug, PartialEq)]
pub struct Captions {
    pub people: String,
    pub face: String,
}

impl Captions {
    /// The degenerate stand-in: it exercises every code path but teaches little.
    pub fn template() -> Self {
        Self {
            people: TEMPLATE_PEOPLE.into(),
            face: TEMPLATE_FACE.into(),
        }
    }
}

/// Captions by photo, read from a file a person has: looked up by the photo's relative path,
/// else its file name, else its stem (the last two only where they are unique in the file).
#[derive(Debug, Default)]
pub struct CaptionTable {
    by_path: HashMap<String, Captions>,
    by_name: HashMap<String, Option<Captions>>,
    by_stem: HashMap<String, Option<Captions>>,
}

/// Column / key names accepted for the photo and for each caption.
const PHOTO_KEYS: [&str; 5] = ["origin_img", "image", "file", "image_name", "path"];
const PEOPLE_KEYS: [&str; 2] = ["vqa_llva", "caption"];
const FACE_KEYS: [&str; 3] = [
    "vqa_llva_more_face_detail",
    "vqa_llva_face_caption",
    "facial_caption",
];

fn base(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn stem(path: &str) -> &str {
    let b = base(path);
    match b.rfind('.') {
        Some(i) if i > 0 => &b[..i],
        _ => b,
    }
}

impl CaptionTable {
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    fn insert(&mut self, photo: &str, captions: Captions) {
        let path = photo.replace('\\', "/");
        for (map, key) in [
            (&mut self.by_name, base(&path).to_string()),
            (&mut self.by_stem, stem(&path).to_string()),
        ] {
            map.entry(key)
                .and_modify(|c| *c = None)
                .or_insert_with(|| Some(captions.clone()));
        }
        self.by_path.insert(path, captions);
    }

    /// The captions of the photo at `origin` (relative, `/`-separated), if the file has them.
    pub fn get(&self, origin: &str) -> Option<&Captions> {
        self.by_path
            .get(origin)
            .or_else(|| self.by_name.get(base(origin)).and_then(Option::as_ref))
            .or_else(|| self.by_stem.get(stem(origin)).and_then(Option::as_ref))
    }

    /// A JSON object `{photo: {vqa_llva, vqa_llva_more_face_detail}}` or a list of records
    /// naming their photo (`origin_IMG`, `image`, `file`…): the official `JSON_all.json` works.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |e: String| TrainError::Sample(format!("captions: {e}"));
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut table = Self::default();
        let captions_of = |what: &str, v: &serde_json::Value| -> Result<Captions> {
            let field = |keys: &[&str]| {
                v.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| keys.contains(&k.to_lowercase().as_str()))
                        .and_then(|(_, v)| v.as_str())
                        .map(str::to_string)
                })
            };
            match (field(&PEOPLE_KEYS), field(&FACE_KEYS)) {
                (Some(people), Some(face)) => Ok(Captions { people, face }),
                _ => Err(bad(format!(
                    "{what} needs vqa_llva and vqa_llva_more_face_detail"
                ))),
            }
        };
        match &value {
            serde_json::Value::Object(map) => {
                for (photo, v) in map {
                    table.insert(photo, captions_of(photo, v)?);
                }
            }
            serde_json::Value::Array(list) => {
                for (i, v) in list.iter().enumerate() {
                    let photo = v
                        .as_object()
                        .and_then(|o| {
                            o.iter()
                                .find(|(k, _)| PHOTO_KEYS.contains(&k.to_lowercase().as_str()))
                        })
                        .and_then(|(_, p)| p.as_str())
                        .ok_or_else(|| {
                            bad(format!(
                                "record {i} names no photo (origin_IMG, image or file)"
                            ))
                        })?;
                    table.insert(photo, captions_of(&format!("record {i}"), v)?);
                }
            }
            _ => return Err(bad("expected an object or a list".into())),
        }
        Ok(table)
    }

    /// A CSV with a header naming the photo column (`image`, `file`, `origin_IMG`…),
    /// `vqa_llva` and `vqa_llva_more_face_detail` (quoted fields may span lines).
    pub fn from_csv(text: &str) -> Result<Self> {
        let bad = |e: String| TrainError::Sample(format!("captions: {e}"));
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_lowercase())
            .collect();
        let column = |keys: &[&str]| header.iter().position(|h| keys.contains(&h.as_str()));
        let (Some(photo), Some(people), Some(face)) = (
            column(&PHOTO_KEYS),
            column(&PEOPLE_KEYS),
            column(&FACE_KEYS),
        ) else {
            return Err(bad(format!(
                "the header must name the photo (image or file), vqa_llva and vqa_llva_more_face_detail (got {})",
                header.join(",")
            )));
        };
        let mut table = Self::default();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
            let get = |c: usize| row.get(c).unwrap_or("").trim().to_string();
            if get(photo).is_empty() {
                continue;
            }
            table.insert(
                &get(photo),
                Captions {
                    people: get(people),
                    face: get(face),
                },
            );
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompts_keep_the_official_spaces() {
        assert!(PROMPT_PEOPLE.contains("gender,         age"));
        assert!(PROMPT_FACE.contains("including         face"));
    }

    #[test]
    fn json_object_list_and_csv_are_looked_up_by_path_name_and_stem() {
        let object = CaptionTable::from_json(
            r#"{"a/one.png": {"vqa_llva": "p1", "vqa_llva_more_face_detail": "f1"},
                "two.jpg": {"vqa_llva": "p2", "vqa_llva_face_caption": "f2"}}"#,
        )
        .unwrap();
        assert_eq!(object.get("a/one.png").unwrap().face, "f1");
        assert_eq!(object.get("b/two.jpg").unwrap().people, "p2");
        assert_eq!(object.get("x/two.png").unwrap().face, "f2");
        assert!(object.get("three.png").is_none());

        let list = CaptionTable::from_json(
            r#"[{"origin_IMG": "15/1.png", "vqa_llva": "p", "vqa_llva_more_face_detail": "f"}]"#,
        )
        .unwrap();
        assert_eq!(list.get("15/1.png").unwrap().people, "p");
        assert!(CaptionTable::from_json(r#"[{"vqa_llva": "p"}]"#).is_err());

        let csv = CaptionTable::from_csv(
            "File,vqa_llva,vqa_llva_more_face_detail\none.png,\"a, b\",\"line\nbreak\"\n",
        )
        .unwrap();
        assert_eq!(csv.get("one.png").unwrap().people, "a, b");
        assert_eq!(csv.get("one.png").unwrap().face, "line\nbreak");
        assert!(CaptionTable::from_csv("name,caption\n").is_err());
    }

    #[test]
    fn a_stem_shared_by_two_photos_is_not_guessed() {
        let t = CaptionTable::from_json(
            r#"{"a/x.png": {"vqa_llva": "1", "vqa_llva_more_face_detail": "1"},
                "b/x.png": {"vqa_llva": "2", "vqa_llva_more_face_detail": "2"}}"#,
        )
        .unwrap();
        assert_eq!(t.get("b/x.png").unwrap().people, "2");
        assert!(t.get("c/x.png").is_none());
    }
}
