//! CLIP: the BPE tokenizer and the text transformer (transformers `CLIPTextModel`).

pub mod config;
pub mod text;
pub mod tokenizer;

pub use config::{ClipTextConfig, HiddenAct};
pub use text::{ClipTextModel, ClipTextOutput};
pub use tokenizer::ClipTokenizer;
