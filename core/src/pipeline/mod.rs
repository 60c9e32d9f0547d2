//! Pipelines: the only place where models are wired together.

pub mod consistentid;
pub mod denoise;
pub mod engine;
pub mod events;
pub mod into;
pub mod photo;
pub mod photo_job;
pub mod request;
pub mod txt2img;

pub use engine::{Engine, FaceJob, IdentitySource};
pub use events::{Candidate, GeneratedImage, Phase, Sink};
pub use photo_job::{ControlJob, PhotoJob};
pub use request::GenerationRequest;
pub use txt2img::{DenoiseLoop, SingleFileConfigs, StableDiffusion, StepObserver, Txt2ImgRequest};
