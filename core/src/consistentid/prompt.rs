//! The text side of the official pipeline: the fixed facial caption, the marker algorithm
//! (`remove_duplicate_keywords`, `process_text_with_markers`) and the prompt assembly of
//! `encode_prompt_with_trigger_word` (the 77-token fallback, the facial-token mask).
//!
//! Reproduced with its quirks: index arithmetic follows Python's slicing (a marker that is not
//! found has index −1), repeated keywords leave double spaces, and regions are paired with
//! facial tokens in text order (face, ears, eyes, nose, mouth) while region images come in label
//! order (the released weights were trained that way).

use regex::Regex;

use crate::clip::ClipTokenizer;
use crate::clip::tokenizer::{FACIAL_TOKEN, IMAGE_TOKEN};
use crate::{Error, Result};

/// The caption the SD1.5 pipeline uses instead of running LLaVA (since 2024-08-04).
pub const FACIAL_CAPTION: &str =
    "The person has one face, one nose, two eyes, two ears, and one mouth.";

/// The template of the official inpainting and ControlNet pipelines
/// (`BaseConsistentID.get_prepare_llva_caption`): no face, "a mouth".
pub const PHOTO_FACIAL_CAPTION: &str = "The person has one nose, two eyes, two ears, and a mouth.";

/// The facial keywords, in `remove_duplicate_keywords` order.
const KEYWORDS: [&str; 5] = ["face", "ears", "eyes", "nose", "mouth"];

/// Mask-dict keys in the canonical marker order, with their words.
const MARKER_KEYS: [(&str, &str); 8] = [
    ("Face", "face"),
    ("Left_Ear", "ears"),
    ("Right_Ear", "ears"),
    ("Left_Eye", "eyes"),
    ("Right_Eye", "eyes"),
    ("Nose", "nose"),
    ("Upper_Lip", "mouth"),
    ("Lower_Lip", "mouth"),
];

/// Captions longer than this (characters) are dropped by the official code.
const MAX_CAPTION_CHARS: usize = 330;

/// Blanks out every case-insensitive repeat of a keyword, re-joining words and punctuation with
/// single spaces (blanked words leave an extra space, as upstream).
pub fn remove_duplicate_keywords(text: &str) -> String {
    let re = Regex::new(r"\b\w+\b|[.,;!?]").expect("a valid pattern");
    let mut words: Vec<String> = re.find_iter(text).map(|m| m.as_str().to_string()).collect();
    for keyword in KEYWORDS {
        let mut count = 0;
        for w in words.iter_mut() {
            if w.to_lowercase() == keyword {
                count += 1;
                if count > 1 {
                    w.clear();
                }
            }
        }
    }
    words.join(" ")
}

/// Python `s[a:b]` on characters (negative indices count from the end, bounds clamp).
fn py_slice(s: &[char], a: isize, b: isize) -> String {
    let n = s.len() as isize;
    let norm = |i: isize| if i < 0 { (i + n).max(0) } else { i.min(n) };
    let (a, b) = (norm(a), norm(b));
    if a >= b {
        String::new()
    } else {
        s[a as usize..b as usize].iter().collect()
    }
}

/// Python `str.find` on characters: index or −1.
fn py_find(s: &[char], needle: &str) -> isize {
    let n: Vec<char> = needle.chars().collect();
    if n.is_empty() {
        return 0;
    }
    s.windows(n.len())
        .position(|w| w == n.as_slice())
        .map_or(-1, |i| i as isize)
}

/// `process_text_with_markers(caption, masks)`: the caption reduced to one clause per facial
/// feature, each followed by `<|facial|>`, and the mask keys that kept a clause (in their
/// original order).
pub fn process_text_with_markers(caption: &str, mask_keys: &[String]) -> (String, Vec<String>) {
    let text = remove_duplicate_keywords(caption);
    let mut features: Vec<&str> = Vec::new();
    for (key, word) in MARKER_KEYS {
        if mask_keys.iter().any(|k| k == key) && !features.contains(&word) {
            features.push(word);
        }
    }
    let mut kept: Vec<String> = mask_keys.to_vec();
    let mut marked = text;
    for &feature in features.iter().rev() {
        let re = Regex::new(&format!(r"\b{feature}\b")).expect("a valid pattern");
        let replaced = re
            .replacen(&marked, 1, format!("{feature} <|{feature}|>"))
            .into_owned();
        if replaced == marked {
            kept.retain(|k| !MARKER_KEYS.iter().any(|(mk, w)| mk == k && *w == feature));
        }
        marked = replaced;
    }
    let mut chars: Vec<char> = marked.replace('\n', "").chars().collect();
    let delims = [',', '.', ';'];
    let mut clauses: Vec<String> = Vec::new();
    for &feature in &features {
        let marker = format!("<|{feature}|>");
        let mut start = py_find(&chars, &marker);
        let mut end = start + marker.chars().count() as isize;
        while start > 0 && !delims.contains(&chars[(start - 1) as usize]) {
            start -= 1;
        }
        while end < chars.len() as isize && end >= 0 && !delims.contains(&chars[end as usize]) {
            end += 1;
        }
        let context = py_slice(&chars, start, end).trim().to_string();
        if !context.is_empty() {
            clauses.push(format!("{context},"));
            let mut rest: Vec<char> = py_slice(&chars, 0, start).chars().collect();
            rest.extend(py_slice(&chars, end, isize::MAX).chars());
            chars = rest;
        }
    }
    let mut out = clauses.join(" ");
    for feature in ["face", "ears", "nose", "eyes", "mouth"] {
        out = out.replace(&format!("<|{feature}|>"), "<|facial|>");
    }
    (out, kept)
}

/// What `encode_prompt_with_trigger_word` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsistentIdPrompt {
    /// The prompt with the facial clauses and markers (what is tokenised).
    pub prompt_face: String,
    /// `prompt_face` without `<|facial|>` / `<|image|>` (encoded for the text-only phase).
    pub prompt_text_only: String,
    /// Clean ids (markers removed), truncated or padded to the model length.
    pub input_ids: Vec<u32>,
    /// True at the token before each `<|facial|>` marker.
    pub facial_token_mask: Vec<bool>,
    /// Positions of the facial tokens, zero-padded to `max_facials`.
    pub facial_token_idx: Vec<usize>,
    pub facial_token_idx_mask: Vec<bool>,
    /// The mask keys that kept a clause, in mask order.
    pub kept_regions: Vec<String>,
}

/// `text` without ConsistentID's reserved markers, or `None` when it has none. Typed by a
/// user they would be taken for the pipeline's own positions (the official code then indexes
/// past its buffers).
pub fn strip_reserved_markers(text: &str) -> Option<String> {
    if !text.contains(IMAGE_TOKEN) && !text.contains(FACIAL_TOKEN) {
        return None;
    }
    Some(text.replace(IMAGE_TOKEN, "").replace(FACIAL_TOKEN, ""))
}

/// Assembles the prompt as the official pipeline. `tokenizer` must know `<|facial|>`.
pub fn build_prompt(
    prompt: &str,
    caption: &str,
    mask_keys: &[String],
    tokenizer: &ClipTokenizer,
    max_facials: usize,
) -> Result<ConsistentIdPrompt> {
    if tokenizer.token_id("<|facial|>").is_none() {
        return Err(Error::InvalidRequest(
            "the tokenizer lacks the <|facial|> token".into(),
        ));
    }
    if strip_reserved_markers(prompt).is_some() {
        // Typed markers would add facial positions past the regions (upstream indexes out
        // of bounds); requests remove them before they get here.
        return Err(Error::InvalidRequest(
            "the prompt contains <|image|> or <|facial|>, which are reserved for the pipeline's own markers".into(),
        ));
    }
    let (facial_text, kept) = process_text_with_markers(caption, mask_keys);
    let max_len = tokenizer.model_max_length();
    let mut prompt_face = format!("{prompt}Detail:{facial_text}");
    // `tokenizer(prompt_face, padding="max_length", truncation=False)` longer than the model
    // length moves the facial details first.
    if tokenizer.encode(&prompt_face).len() > max_len {
        prompt_face = format!("Detail:{facial_text} Caption:{prompt}");
    }
    // Past the length limit the official pipeline drops the caption; an empty caption (the
    // "no facial caption" ablation) leaves the prompt as it is too.
    if caption.chars().count() > MAX_CAPTION_CHARS || caption.is_empty() {
        prompt_face = prompt.to_string();
    }
    let prompt_text_only = prompt_face
        .replace("<|facial|>", "")
        .replace("<|image|>", "");

    let marked = tokenize_with_markers(&prompt_face, tokenizer, max_facials)?;
    Ok(ConsistentIdPrompt {
        prompt_face,
        prompt_text_only,
        input_ids: marked.input_ids,
        facial_token_mask: marked.facial_token_mask,
        facial_token_idx: marked.facial_token_idx,
        facial_token_idx_mask: marked.facial_token_idx_mask,
        kept_regions: kept,
    })
}

/// A marked text tokenised as `tokenize_and_mask_noun_phrases_ends` + `prepare_image_token_idx`.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkedTokens {
    /// Clean ids (markers removed), truncated or padded to the model length.
    pub input_ids: Vec<u32>,
    /// True at the token before each `<|facial|>` marker.
    pub facial_token_mask: Vec<bool>,
    /// Positions of the facial tokens, zero-padded to `max_facials`.
    pub facial_token_idx: Vec<usize>,
    pub facial_token_idx_mask: Vec<bool>,
}

/// `tokenize_and_mask_noun_phrases_ends` and `prepare_image_token_idx` on `text` (which may hold
/// `<|facial|>` markers). `tokenizer` must know `<|facial|>`.
pub fn tokenize_with_markers(
    text: &str,
    tokenizer: &ClipTokenizer,
    max_facials: usize,
) -> Result<MarkedTokens> {
    let facial_id = tokenizer
        .token_id("<|facial|>")
        .ok_or_else(|| Error::InvalidRequest("the tokenizer lacks the <|facial|> token".into()))?;
    let max_len = tokenizer.model_max_length();
    let ids = tokenizer.encode(text);
    let mut mask = vec![false; ids.len()];
    let mut clean: Vec<u32> = Vec::with_capacity(ids.len());
    for &id in &ids {
        if id == facial_id {
            // Upstream writes `mask[clean_index - 1]`; at index 0 Python's −1 is the last entry.
            let i = clean.len().checked_sub(1).unwrap_or(mask.len() - 1);
            mask[i] = true;
        } else {
            clean.push(id);
        }
    }
    clean.truncate(max_len);
    clean.resize(max_len, tokenizer.pad_id());
    mask.truncate(max_len);
    mask.resize(max_len, false);
    let mut idx: Vec<usize> = (0..max_len).filter(|&i| mask[i]).collect();
    let mut idx_mask = vec![true; idx.len()];
    if idx.len() < max_facials {
        idx.resize(max_facials, 0);
        idx_mask.resize(max_facials, false);
    }
    Ok(MarkedTokens {
        input_ids: clean,
        facial_token_mask: mask,
        facial_token_idx: idx,
        facial_token_idx_mask: idx_mask,
    })
}
