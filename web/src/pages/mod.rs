//! One page per file.

pub mod create;
pub mod mine;
pub mod prediction;
pub mod share;
