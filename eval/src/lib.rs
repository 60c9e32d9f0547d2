//! Evaluation of identity-preserving portraits, beside the engine and on core's models: the
//! per-image metrics ([`scorer`]: FaceSim with ArcFace, FGIS, CLIP-I), the Fréchet distance in
//! f64 ([`frechet`]), benchmarks and their prompt categories ([`benchmark`]), statistics
//! ([`summary`]) and the HTML report ([`report`]). No file I/O: the `consistentid eval`
//! command reads and writes.

pub mod benchmark;
pub mod crop;
pub mod eigen;
pub mod frechet;
pub mod report;
pub mod scorer;
pub mod summary;
