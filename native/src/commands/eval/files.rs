//! The files of an evaluation run: `RUN/images/` with its `manifest.json` (what `eval run`
//! generated, one entry per image), `rows.json` (every image's scores), `results.csv`,
//! `summary.json` and `report.html`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use consistentid_core::image::RgbImage;
use consistentid_core::image::pil::{Filter, resize};
use consistentid_eval::report::{self, Thumb};
use consistentid_eval::summary::{Row, Summary, rows_csv};
use serde::{Deserialize, Serialize};

use crate::io::output::write_atomic;

/// Thumbnails in a report (each a small JPEG inside the HTML).
pub const MAX_THUMBS: usize = 240;
const THUMB_SIDE: usize = 128;

/// One generated image, as `eval run` records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Relative to the images folder.
    pub image: String,
    pub reference: String,
    pub prompt: String,
    pub category: String,
    pub seed: u64,
    pub generate_seconds: f64,
}

pub fn manifest_path(images: &Path) -> PathBuf {
    images.join("manifest.json")
}

pub fn read_manifest(images: &Path) -> Result<Option<Vec<ManifestEntry>>> {
    let path = manifest_path(images);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    let entries = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an eval manifest", path.display()))?;
    Ok(Some(entries))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// A scored run as written in its folder.
pub struct ScoredRun {
    pub summary: Summary,
    pub rows: Vec<Row>,
}

pub fn read_run(dir: &Path) -> Result<ScoredRun> {
    let read = |name: &str| -> Result<String> {
        std::fs::read_to_string(dir.join(name)).with_context(|| {
            format!(
                "{} has no {name}: is it a folder written by `eval score` or `eval run`?",
                dir.display()
            )
        })
    };
    Ok(ScoredRun {
        summary: serde_json::from_str(&read("summary.json")?)
            .with_context(|| format!("{}/summary.json is not a summary", dir.display()))?,
        rows: serde_json::from_str(&read("rows.json")?)
            .with_context(|| format!("{}/rows.json is not a list of rows", dir.display()))?,
    })
}

/// A small JPEG data URI of an image.
fn thumbnail(img: &RgbImage) -> Option<String> {
    use base64::Engine;
    let scale = THUMB_SIDE as f64 / img.width.max(img.height).max(1) as f64;
    let (w, h) = (
        ((img.width as f64 * scale).round() as usize).max(1),
        ((img.height as f64 * scale).round() as usize).max(1),
    );
    let small = resize(img, w, h, Filter::Bilinear);
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80);
    image::ImageEncoder::write_image(
        encoder,
        &small.data,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgb8,
    )
    .ok()?;
    Some(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Writes rows.json, results.csv, summary.json and report.html into `out`; `images` is where
/// the rows' images are (for the thumbnails).
pub fn write_run(out: &Path, images: &Path, summary: &Summary, rows: &[Row]) -> Result<()> {
    write_json(&out.join("rows.json"), &rows)?;
    write_atomic(&out.join("results.csv"), rows_csv(rows).as_bytes())?;
    write_json(&out.join("summary.json"), summary)?;
    // An even sample of the images when there are more than the grid holds.
    let step = rows.len().div_ceil(MAX_THUMBS).max(1);
    let thumbs: Vec<Thumb> = rows
        .iter()
        .step_by(step)
        .filter_map(|row| {
            let img = crate::io::image::read_image(&images.join(&row.image)).ok()?;
            Some(Thumb {
                row,
                data_uri: thumbnail(&img)?,
            })
        })
        .collect();
    let html = report::render(&[(summary, Some(rows))], &thumbs);
    write_atomic(&out.join("report.html"), html.as_bytes())
}
