//! One module per command; `args` holds the flags several commands share.

pub mod args;
pub mod bench;
pub mod dataset;
pub mod eval;
/// `fetch` lives beside the host (which fetches a missing model folder), not under commands.
pub use crate::fetch;
pub mod generate;
pub mod migrate;
pub mod photo_in;
pub mod serve;
pub mod stage;
pub mod terminal;
pub mod train;
