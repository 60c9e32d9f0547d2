//! A small ONNX executor on burn: enough of the op set to run insightface's SCRFD and ArcFace
//! models and BlazeFace natively, on whatever device the rest of the pipeline uses.
//!
//! [`OnnxModel::parse`] decodes the file (protobuf via prost) and rejects unsupported ops up
//! front; [`OnnxSession`] uploads the initializers once and runs the nodes in file order.

pub mod model;
pub mod ops;
pub mod proto;
pub mod session;
pub mod value;

pub use model::{GraphInput, HostTensor, OnnxModel};
pub use session::OnnxSession;
pub use value::{FloatValue, IntValue, Value};
