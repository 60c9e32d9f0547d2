//! Files in and out: images (decode with libjpeg-turbo for JPEG), PNG output with parameters,
//! atomic writes and output naming.

pub mod folder;
pub mod image;
pub mod output;
pub mod png;
pub mod tensors;
