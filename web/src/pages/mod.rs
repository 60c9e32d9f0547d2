//! One page per file.

pub mod bench;
pub mod create;
pub mod mine;
pub mod prediction;
pub mod share;
