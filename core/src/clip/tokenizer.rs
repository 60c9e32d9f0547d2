//! CLIP's byte-level BPE tokenizer, equal to transformers' slow `CLIPTokenizer`
//! (transformers 4.31 `models/clip/tokenization_clip.py`, the path taken without `ftfy`,
//! which the official ConsistentID environment does not install).
//!
//! Text is split on special and added tokens first, then each piece is cleaned the way
//! transformers' `BasicTokenizer(strip_accents=False, do_split_on_punc=False)` does (control
//! characters dropped, whitespace normalised, spaces around CJK ideographs, NFC, lower case),
//! split with CLIP's word regex, mapped to byte-level characters and merged with the BPE
//! ranks. The merge step itself is the `tokenizers` crate's BPE model.

use std::collections::HashMap;
use std::io::Read;

use regex::Regex;
use tokenizers::Model;
use tokenizers::models::bpe::{BPE, Vocab};
use unicode_normalization::UnicodeNormalization;

use crate::weights::{WeightSource, join, read_json};
use crate::{Error, Result};

/// The trigger token ConsistentID adds for the (dormant) image-token path.
pub const IMAGE_TOKEN: &str = "<|image|>";
/// The token ConsistentID places after each facial-region word.
pub const FACIAL_TOKEN: &str = "<|facial|>";

/// transformers' slow CLIP tokenizer reads at most this many merges (`49152 - 256 - 2`).
const MAX_MERGES: usize = 48_894;

/// CLIP's word splitter (`re.IGNORECASE` upstream; the input is already lower-cased).
const WORD_PATTERN: &str = r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The special-token strings of a CLIP tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: String,
    pub eos: String,
    pub unk: String,
    pub pad: String,
}

impl Default for SpecialTokens {
    /// The values of `openai/clip-vit-large-patch14`, the SD1.5 tokenizer.
    fn default() -> Self {
        Self {
            bos: "<|startoftext|>".into(),
            eos: "<|endoftext|>".into(),
            unk: "<|endoftext|>".into(),
            pad: "<|endoftext|>".into(),
        }
    }
}

/// A CLIP BPE tokenizer.
pub struct ClipTokenizer {
    bpe: BPE,
    /// Vocabulary plus added tokens, for id look-ups.
    token_to_id: HashMap<String, u32>,
    /// Special and added tokens that are split off before BPE, longest first.
    no_split: Vec<(String, u32)>,
    next_added_id: u32,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    unk_id: u32,
    model_max_length: usize,
    word_re: Regex,
    byte_encoder: [char; 256],
}

impl ClipTokenizer {
    /// Builds a tokenizer from `vocab.json` and `merges.txt` contents.
    pub fn from_vocab_merges(
        vocab_json: &str,
        merges_txt: &str,
        special: SpecialTokens,
        model_max_length: usize,
    ) -> Result<Self> {
        let vocab: HashMap<String, u32> =
            serde_json::from_str(vocab_json).map_err(|e| Error::Tokenizer {
                path: "vocab.json".into(),
                reason: e.to_string(),
            })?;
        // Upstream: `read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]`: the first line is
        // the `#version` header, and merges past the CLIP count are ignored.
        let merges = merges_txt
            .trim()
            .split('\n')
            .skip(1)
            .take(MAX_MERGES)
            .map(|line| {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) => Ok((a.to_string(), b.to_string())),
                    _ => Err(Error::Tokenizer {
                        path: "merges.txt".into(),
                        reason: format!("malformed merge line `{line}`"),
                    }),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Self::build(vocab, merges, special, model_max_length)
    }

    /// Builds the tokenizer from open_clip's `bpe_simple_vocab_16e6.txt.gz`, as
    /// `openai/clip-vit-large-patch14` derives its vocabulary from it: the 256 byte characters,
    /// the same with `</w>`, one token per merge, then `<|startoftext|>` and `<|endoftext|>`.
    pub fn from_bpe_gz(gz: &[u8]) -> Result<Self> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| Error::Tokenizer {
                path: "bpe_simple_vocab_16e6.txt.gz".into(),
                reason: e.to_string(),
            })?;
        let merges: Vec<(String, String)> = text
            .split('\n')
            .skip(1)
            .take(MAX_MERGES)
            .filter_map(|l| {
                let mut p = l.split_whitespace();
                Some((p.next()?.to_string(), p.next()?.to_string()))
            })
            .collect();
        // Vocabulary order is the upstream dict's insertion order: printable bytes first (their
        // characters are the bytes themselves), then the remapped ones (U+0100 onwards).
        let mut chars = bytes_to_unicode().to_vec();
        chars.sort();
        let mut tokens: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        tokens.extend(chars.iter().map(|c| format!("{c}</w>")));
        tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
        let special = SpecialTokens::default();
        tokens.push(special.bos.clone());
        tokens.push(special.eos.clone());
        let vocab = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| (t, i as u32))
            .collect();
        Self::build(vocab, merges, special, 77)
    }

    /// Loads a transformers tokenizer folder (`vocab.json`, `merges.txt`,
    /// `special_tokens_map.json`, `tokenizer_config.json`, optional `added_tokens.json`).
    pub fn from_source(source: &dyn WeightSource, dir: &str) -> Result<Self> {
        let vocab = source.read_string(&join(dir, "vocab.json"))?;
        let merges = source.read_string(&join(dir, "merges.txt"))?;
        let config_path = join(dir, "tokenizer_config.json");
        let config: serde_json::Value = if source.exists(&config_path) {
            read_json(source, &config_path)?
        } else {
            serde_json::Value::Null
        };
        let map_path = join(dir, "special_tokens_map.json");
        let map: serde_json::Value = if source.exists(&map_path) {
            read_json(source, &map_path)?
        } else {
            serde_json::Value::Null
        };
        // special_tokens_map.json wins over tokenizer_config.json, as in transformers.
        let pick = |key: &str, default: String| {
            token_content(&map[key])
                .or_else(|| token_content(&config[key]))
                .unwrap_or(default)
        };
        let d = SpecialTokens::default();
        let special = SpecialTokens {
            bos: pick("bos_token", d.bos),
            eos: pick("eos_token", d.eos),
            unk: pick("unk_token", d.unk),
            pad: pick("pad_token", d.pad),
        };
        // Absurd values (transformers writes 1e30 for "no limit") fall back to CLIP's 77.
        let max_len = config["model_max_length"]
            .as_f64()
            .filter(|v| *v >= 2.0 && *v < 1e6)
            .map_or(77, |v| v as usize);
        let mut tok = Self::from_vocab_merges(&vocab, &merges, special, max_len)?;
        let added_path = join(dir, "added_tokens.json");
        if source.exists(&added_path) {
            let added: HashMap<String, u32> = read_json(source, &added_path)?;
            let mut added: Vec<_> = added.into_iter().collect();
            added.sort_by_key(|(_, id)| *id);
            for (token, id) in added {
                tok.insert_added(token, id);
            }
        }
        Ok(tok)
    }

    fn build(
        vocab: HashMap<String, u32>,
        merges: Vec<(String, String)>,
        special: SpecialTokens,
        model_max_length: usize,
    ) -> Result<Self> {
        let id_of = |t: &str| {
            vocab.get(t).copied().ok_or_else(|| Error::Tokenizer {
                path: "vocab.json".into(),
                reason: format!("special token `{t}` is not in the vocabulary"),
            })
        };
        let (bos_id, eos_id, unk_id, pad_id) = (
            id_of(&special.bos)?,
            id_of(&special.eos)?,
            id_of(&special.unk)?,
            id_of(&special.pad)?,
        );
        let bpe_vocab: Vocab = vocab.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(bpe_vocab, merges)
            .end_of_word_suffix("</w>".into())
            .unk_token(special.unk.clone())
            .build()
            .map_err(|e| Error::Tokenizer {
                path: "merges.txt".into(),
                reason: e.to_string(),
            })?;
        let next_added_id = vocab.values().max().map_or(0, |m| m + 1);
        let mut no_split: Vec<(String, u32)> =
            [&special.bos, &special.eos, &special.unk, &special.pad]
                .into_iter()
                .map(|t| (t.clone(), vocab[t.as_str()]))
                .collect();
        no_split.sort();
        no_split.dedup();
        let mut tok = Self {
            bpe,
            token_to_id: vocab,
            no_split,
            next_added_id,
            bos_id,
            eos_id,
            pad_id,
            unk_id,
            model_max_length,
            word_re: Regex::new(WORD_PATTERN).expect("the CLIP word pattern is valid"),
            byte_encoder: bytes_to_unicode(),
        };
        tok.sort_no_split();
        Ok(tok)
    }

    fn sort_no_split(&mut self) {
        self.no_split
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
    }

    fn insert_added(&mut self, token: String, id: u32) {
        if !self.no_split.iter().any(|(t, _)| *t == token) {
            self.no_split.push((token.clone(), id));
            self.sort_no_split();
        }
        self.next_added_id = self.next_added_id.max(id + 1);
        self.token_to_id.insert(token, id);
    }

    /// Adds special tokens the way `tokenizer.add_tokens([...], special_tokens=True)` does:
    /// tokens already known keep their id, new ones get the next free ids in order.
    /// Returns how many were new.
    pub fn add_special_tokens(&mut self, tokens: &[&str]) -> usize {
        let mut added = 0;
        for t in tokens {
            if let Some(&id) = self.token_to_id.get(*t) {
                self.insert_added(t.to_string(), id);
            } else {
                let id = self.next_added_id;
                self.insert_added(t.to_string(), id);
                added += 1;
            }
        }
        added
    }

    /// A tokenizer with ConsistentID's `<|image|>` and `<|facial|>` added (ids 49408 and
    /// 49409 on the standard vocabulary).
    pub fn with_consistentid_tokens(mut self) -> Self {
        self.add_special_tokens(&[IMAGE_TOKEN, FACIAL_TOKEN]);
        self
    }

    /// The id of a token string (vocabulary or added), if any.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.token_to_id.get(token).copied()
    }

    /// `<|startoftext|>`.
    pub fn bos_id(&self) -> u32 {
        self.bos_id
    }
    /// `<|endoftext|>`.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }
    /// The padding id (`<|endoftext|>` for SD1.5, `!` = 0 for some other CLIPs).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }
    /// The unknown-token id.
    pub fn unk_id(&self) -> u32 {
        self.unk_id
    }
    /// Sequence length of the text encoder (`model_max_length`, 77 for CLIP).
    pub fn model_max_length(&self) -> usize {
        self.model_max_length
    }

    /// Token ids of `text` without BOS/EOS (transformers `tokenizer.tokenize` + ids).
    pub fn tokenize_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match self.find_no_split(rest) {
                Some((start, len, id)) => {
                    self.encode_plain(&rest[..start], &mut ids);
                    ids.push(id);
                    rest = &rest[start + len..];
                }
                None => {
                    self.encode_plain(rest, &mut ids);
                    break;
                }
            }
        }
        ids
    }

    /// `tokenizer.encode(text)`: BOS + ids + EOS, no truncation or padding.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.bos_id];
        ids.extend(self.tokenize_ids(text));
        ids.push(self.eos_id);
        ids
    }

    /// `tokenizer(text, padding="max_length", max_length=L, truncation=True).input_ids`:
    /// the content is cut to `L - 2` tokens, wrapped in BOS/EOS and right-padded with the pad id.
    pub fn encode_padded(&self, text: &str, max_length: usize) -> Vec<u32> {
        let mut content = self.tokenize_ids(text);
        content.truncate(max_length.saturating_sub(2));
        let mut ids = Vec::with_capacity(max_length);
        ids.push(self.bos_id);
        ids.extend(content);
        ids.push(self.eos_id);
        ids.truncate(max_length);
        ids.resize(max_length, self.pad_id);
        ids
    }

    /// The words that `encode_padded(text, model_max_length)` cuts off, decoded back to text as
    /// diffusers logs them; `None` when the whole text fits.
    pub fn truncated_text(&self, text: &str) -> Option<String> {
        let ids = self.tokenize_ids(text);
        let keep = self.model_max_length.saturating_sub(2);
        (ids.len() > keep).then(|| self.decode(&ids[keep..]))
    }

    /// Token ids back to text (transformers' `CLIPTokenizer.decode`: byte-level pieces joined,
    /// `</w>` word ends as spaces).
    pub fn decode(&self, ids: &[u32]) -> String {
        let wanted: std::collections::HashSet<u32> = ids.iter().copied().collect();
        let names: HashMap<u32, &str> = self
            .token_to_id
            .iter()
            .filter(|(_, id)| wanted.contains(id))
            .map(|(t, &id)| (id, t.as_str()))
            .collect();
        let byte_of: HashMap<char, u8> = self
            .byte_encoder
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let mut bytes = Vec::new();
        for id in ids {
            let piece = names.get(id).copied().unwrap_or("");
            // Added tokens (`<|facial|>`) are not byte-encoded.
            if piece.chars().all(|c| byte_of.contains_key(&c)) {
                bytes.extend(piece.chars().map(|c| byte_of[&c]));
            } else {
                bytes.extend_from_slice(piece.as_bytes());
            }
        }
        String::from_utf8_lossy(&bytes)
            .replace("</w>", " ")
            .trim()
            .to_string()
    }

    /// The earliest special/added token in `text` (longest at that position):
    /// `(byte start, byte length, id)`.
    fn find_no_split(&self, text: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (tok, id) in &self.no_split {
            if let Some(pos) = text.find(tok.as_str()) {
                let better = match best {
                    None => true,
                    Some((bp, bl, _)) => pos < bp || (pos == bp && tok.len() > bl),
                };
                if better {
                    best = Some((pos, tok.len(), *id));
                }
            }
        }
        best
    }

    /// `CLIPTokenizer._tokenize` for text free of special tokens.
    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) {
        let cleaned = basic_clean(text);
        for word in self.word_re.find_iter(&cleaned) {
            let word = word.as_str();
            // The regex keeps these whole and the BPE cache maps them to themselves.
            if (word == "<|startoftext|>" || word == "<|endoftext|>")
                && let Some(&id) = self.token_to_id.get(word)
            {
                ids.push(id);
                continue;
            }
            let mapped: String = word
                .bytes()
                .map(|b| self.byte_encoder[b as usize])
                .collect();
            match self.bpe.tokenize(&mapped) {
                Ok(tokens) => ids.extend(tokens.into_iter().map(|t| t.id)),
                // Only reachable with a vocabulary missing byte characters: upstream maps
                // unknown pieces to the unk token.
                Err(_) => ids.push(self.unk_id),
            }
        }
    }
}

/// The `content` of a special-token entry, which is a string or an `AddedToken` object.
fn token_content(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// GPT-2's reversible byte → printable character table, in byte order.
pub fn bytes_to_unicode() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut table = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).expect("byte values are chars")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("small code points are chars")
        };
    }
    table
}

/// transformers' `BasicTokenizer.tokenize` with CLIP's settings, joined by single spaces.
fn basic_clean(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars() {
        let cp = c as u32;
        if cp == 0 || cp == 0xFFFD || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_cjk(cp) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let normalized: String = cleaned.nfc().collect();
    normalized
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `_is_whitespace`: space, tab, newline, carriage return, or Unicode category Zs.
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || general_category_is(c, CategoryClass::SpaceSeparator)
}

/// `_is_control`: category C* except tab, newline and carriage return.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && general_category_is(c, CategoryClass::Other)
}

enum CategoryClass {
    SpaceSeparator,
    Other,
}

fn general_category_is(c: char, class: CategoryClass) -> bool {
    use std::sync::OnceLock;
    static ZS: OnceLock<Regex> = OnceLock::new();
    static C: OnceLock<Regex> = OnceLock::new();
    let re = match class {
        CategoryClass::SpaceSeparator => ZS.get_or_init(|| Regex::new(r"^\p{Zs}$").expect("valid")),
        CategoryClass::Other => C.get_or_init(|| Regex::new(r"^\p{C}$").expect("valid")),
    };
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// `_is_chinese_char`: the CJK Unified Ideographs blocks BERT pads with spaces.
fn is_cjk(cp: u32) -> bool {
    matches!(cp,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_onto_printables() {
        let t = bytes_to_unicode();
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[b' ' as usize], 'Ġ');
        let mut v: Vec<char> = t.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 256);
    }

    #[test]
    fn basic_clean_matches_bert_rules() {
        assert_eq!(basic_clean("  Hello\tWORLD\u{0007}!  "), "hello world!");
        assert_eq!(basic_clean("中文"), "中 文");
        // NFC composes e + combining acute.
        assert_eq!(basic_clean("Cafe\u{0301}"), "café");
    }
}
