//! CLIP: the BPE tokenizer, the text transformer (transformers `CLIPTextModel`) and the vision
//! tower (`CLIPVisionModelWithProjection`).

pub mod config;
pub mod encoder;
pub mod image_processor;
pub mod text;
pub mod tokenizer;
pub mod vision;

pub use config::{ClipTextConfig, ClipVisionConfig, HiddenAct};
pub use text::{ClipTextModel, ClipTextOutput};
pub use tokenizer::ClipTokenizer;
pub use vision::{ClipVisionModelWithProjection, ClipVisionOutput};
