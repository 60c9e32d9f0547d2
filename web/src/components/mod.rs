//! One component per file.

pub mod upload;
