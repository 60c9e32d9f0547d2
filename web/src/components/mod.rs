//! One component per file.

pub mod analysis_panel;
pub mod gallery;
pub mod prompt_form;
pub mod target;
pub mod upload;
