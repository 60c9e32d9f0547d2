//! The native side of ConsistentID: command line, model-folder access and backend choice.
//! Everything model-specific lives in `consistentid-core`.

pub mod cli;
pub mod commands;
#[cfg(test)]
mod deploy_check;
pub mod device;
pub mod fetch;
pub mod hf_cache;
pub mod io;
pub mod models;
pub mod progress;
pub mod server;
pub mod source;
