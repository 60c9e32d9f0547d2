//! The error type for everything a user or the environment can get wrong.

/// Errors of this crate: bad or missing files, configs that do not match weights, bad inputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the model folder must have is not there.
    #[error("missing file `{path}` in the model folder")]
    MissingFile { path: String },

    /// A file exists but could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Read { path: String, reason: String },

    /// A config (JSON) file is malformed or has a value we cannot use.
    #[error("bad config `{path}`: {reason}")]
    Config { path: String, reason: String },

    /// A weight file is corrupt, truncated, or not of the expected format.
    #[error("bad weight file `{path}`: {reason}")]
    WeightFile { path: String, reason: String },

    /// The weights do not fit the module built from the config.
    #[error("weights in `{path}` do not match its config: {reason}")]
    WeightMismatch { path: String, reason: String },

    /// A tokenizer file (vocab, merges, BPE archive) is malformed.
    #[error("bad tokenizer data `{path}`: {reason}")]
    Tokenizer { path: String, reason: String },

    /// A request the pipeline cannot run (image size, step count, ...).
    #[error("{0}")]
    InvalidRequest(String),

    /// An ONNX graph uses an op the executor does not implement.
    #[error("unsupported ONNX op `{op}` (node `{node}`)")]
    UnsupportedOp { op: String, node: String },

    /// An ONNX node cannot run on the values it was given.
    #[error("ONNX node `{node}` ({op}): {reason}")]
    OnnxNode {
        node: String,
        op: String,
        reason: String,
    },

    /// An input tensor file lacks a tensor or has the wrong shape or type.
    #[error("bad input tensor `{name}`: {reason}")]
    Input { name: String, reason: String },

    /// An image that cannot be used: unreadable, corrupt, too large, no face.
    #[error("bad image `{name}`: {reason}")]
    Image { name: String, reason: String },

    /// Reading a result back from the compute device failed.
    #[error("cannot read a result back from the device: {0}")]
    Readback(String),

    /// Request values out of range or malformed, one entry per field; nothing was computed.
    #[error("{}", FieldError::join(.0))]
    InvalidFields(Vec<FieldError>),

    /// The caller asked to stop (checked between denoising steps).
    #[error("canceled")]
    Canceled,
}

/// What is wrong with one field of a request (`field` is the request's field name, e.g.
/// `width`; front ends map it to their own spelling).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn join(errors: &[FieldError]) -> String {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
