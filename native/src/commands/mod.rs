//! One module per command; `args` holds the flags several commands share.

pub mod args;
pub mod bench;
pub mod dataset;
pub mod eval;
pub mod fetch;
pub mod generate;
pub mod photo_in;
pub mod serve;
pub mod stage;
pub mod terminal;
pub mod train;
