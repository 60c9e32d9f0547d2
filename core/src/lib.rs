//! ConsistentID in burn: every model of the official pipeline, backend-generic.
//!
//! This crate holds the model math, tokenisation and weight mapping. It does no file or network
//! I/O (callers hand it bytes through [`weights::WeightSource`]) and never picks a backend: the
//! binaries and tests choose the [`burn::tensor::Device`].

pub mod api;
pub mod bisenet;
pub mod clip;
pub mod consistentid;
pub mod controlnet;
pub mod error;
pub mod face;
pub mod image;
pub mod inception;
pub mod kernels;
pub mod nn;
pub mod onnx;
pub mod parallel;
pub mod pipeline;
pub mod poll;
pub mod rng;
pub mod scheduler;
pub mod tensor_io;
pub mod unet;
pub mod vae;
pub mod vit;
pub mod weights;

pub use error::{Error, Result};
