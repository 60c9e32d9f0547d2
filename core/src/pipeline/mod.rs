//! Pipelines: the only place where models are wired together.

pub mod txt2img;

pub use txt2img::{StableDiffusion, Txt2ImgRequest};
