//! CLIP: the BPE tokenizer, the text transformer (transformers `CLIPTextModel`), the vision
//! tower (`CLIPVisionModelWithProjection`) and both with their projections (`CLIPModel`).

pub mod config;
pub mod encoder;
pub mod image_processor;
pub mod model;
pub mod text;
pub mod tokenizer;
pub mod vision;

pub use config::{ClipTextConfig, ClipVisionConfig, HiddenAct};
pub use model::ClipModel;
pub use text::{ClipTextModel, ClipTextOutput};
pub use tokenizer::ClipTokenizer;
pub use vision::{ClipVisionModelWithProjection, ClipVisionOutput};
