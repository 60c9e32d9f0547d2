//! One component per file.

pub mod gallery;
pub mod prompt_form;
pub mod upload;
