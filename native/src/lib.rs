//! The native side of ConsistentID: command line, model-folder access and backend choice.
//! Everything model-specific lives in `consistentid-core`.

pub mod cli;
pub mod device;
pub mod fetch;
pub mod generate;
pub mod generate_face;
pub mod hf_cache;
pub mod io;
pub mod progress;
pub mod source;
pub mod stage;
pub mod stage_consistentid;
pub mod stage_face;
