//! Pipelines: the only place where models are wired together.

pub mod consistentid;
pub mod request;
pub mod txt2img;

pub use request::GenerationRequest;
pub use txt2img::{DenoiseLoop, SingleFileConfigs, StableDiffusion, Txt2ImgRequest};
