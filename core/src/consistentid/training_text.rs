//! The training prompt of the official `MyDataset.__getitem__` (`utils.py:97-138`): the facial
//! caption marked (`process_text_with_markers`), placed after the general caption's first
//! sentence ("Caption-first"), or first when that is longer than the model length
//! ("Detail-first"), or left out when the facial text is over 340 characters; empty for the
//! 10 % of samples whose text is dropped. Python's semantics are kept: indices count
//! characters, the first sentence's *stripped* length indexes the unstripped caption, and the
//! caption's last character is cut.

use super::prompt::{MarkedTokens, process_text_with_markers, tokenize_with_markers};
use crate::Result;
use crate::clip::ClipTokenizer;

/// Facial texts longer than this many characters are left out (`max_text_length`).
pub const MAX_FACIAL_TEXT_CHARS: usize = 340;

/// Where the facial text went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    CaptionFirst,
    DetailFirst,
    /// The facial text was too long: the general caption alone.
    CaptionOnly,
    /// The text was dropped (classifier-free guidance).
    Dropped,
}

/// One sample's text.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingText {
    pub text: String,
    pub layout: Layout,
    pub tokens: MarkedTokens,
    /// The mask keys whose word kept a marker, in mask order.
    pub kept_regions: Vec<String>,
}

/// `extract_first_sentence`: up to and including the first `.`, stripped.
pub fn extract_first_sentence(text: &str) -> &str {
    match text.find('.') {
        Some(i) => text[..=i].trim(),
        None => text.trim(),
    }
}

/// `s[start:-1]` in characters.
fn slice_to_last(s: &str, start: usize) -> String {
    let n = s.chars().count();
    if start >= n.saturating_sub(1) {
        return String::new();
    }
    s.chars().skip(start).take(n - 1 - start).collect()
}

/// The text, layout and tokens of one sample. `mask_keys` are its facial regions in mask
/// order; `dropped` is this sample's text-drop coin.
pub fn training_text(
    caption: &str,
    facial_caption: &str,
    mask_keys: &[String],
    dropped: bool,
    tokenizer: &ClipTokenizer,
    max_facials: usize,
) -> Result<TrainingText> {
    let (text_face, kept) = process_text_with_markers(facial_caption, mask_keys);
    let first = extract_first_sentence(caption);
    let mut text = format!(
        "Caption:{first} Detail:{text_face}{}",
        slice_to_last(caption, first.chars().count())
    );
    let mut layout = Layout::CaptionFirst;
    if tokenizer.encode(&text).len() > tokenizer.model_max_length() {
        text = format!("Detail:{text_face} Caption:{caption}");
        layout = Layout::DetailFirst;
    }
    if text_face.chars().count() > MAX_FACIAL_TEXT_CHARS {
        text = caption.to_string();
        layout = Layout::CaptionOnly;
    }
    if dropped {
        text.clear();
        layout = Layout::Dropped;
    }
    let tokens = tokenize_with_markers(&text, tokenizer, max_facials)?;
    Ok(TrainingText {
        text,
        layout,
        tokens,
        kept_regions: kept,
    })
}
