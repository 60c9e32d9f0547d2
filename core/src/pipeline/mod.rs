//! Pipelines: the only place where models are wired together.

pub mod consistentid;
pub mod txt2img;

pub use txt2img::{DenoiseLoop, SingleFileConfigs, StableDiffusion, Txt2ImgRequest};
