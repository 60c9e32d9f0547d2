//! Pipelines: the only place where models are wired together.

pub mod txt2img;

pub use txt2img::{SingleFileConfigs, StableDiffusion, Txt2ImgRequest};
