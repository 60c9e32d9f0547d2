//! Training ConsistentID's ID-preservation network on burn's autodiff: ProjPlus, the
//! FacialEncoder and the UNet's attention processors, with the noise-prediction loss and the
//! facial attention localization loss (L_loc), equal to the official `train.py` where the
//! official code is right (`shared/spec/train-eval.md` §A).

pub mod checkpoint;
pub mod dataset;
pub mod export;
pub mod init;
pub mod localization;
pub mod names;
pub mod network;
pub mod objective;
pub mod optimizer;
pub mod plot;
pub mod precision;
pub mod sample;
pub mod step;
pub mod trainer;

/// What training refuses, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Core(#[from] consistentid_core::Error),
    #[error("shapes do not fit: {0}")]
    Shape(String),
    #[error("localization loss: {0}")]
    Localization(String),
    #[error("sample: {0}")]
    Sample(String),
    #[error(
        "the loss is not finite at step {step} (noise loss {noise}, L_loc {loc}); the last checkpoint is kept"
    )]
    NotFinite { step: u64, noise: f32, loc: f32 },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

pub type Result<T> = std::result::Result<T, TrainError>;
