//! 8-bit RGB images: decoding (with EXIF orientation) and the exact resampling routines of the
//! reference libraries whose rounding the pipeline's numerics depend on.

pub mod cv;
pub mod pil;

use crate::{Error, Result};

/// The largest image side accepted (a guard against decompression bombs).
pub const MAX_SIDE: u32 = 8192;

/// An interleaved 8-bit RGB image, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }

    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if data.len() != width * height * 3 {
            return Err(Error::InvalidRequest(format!(
                "{} bytes do not make a {width}x{height} RGB image",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Channel `c` of pixel (x, y).
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * 3 + c]
    }

    /// The same image with the red and blue channels swapped (RGB ↔ BGR).
    pub fn swap_rb(&self) -> Self {
        let mut data = self.data.clone();
        for px in data.chunks_exact_mut(3) {
            px.swap(0, 2);
        }
        Self { data, ..*self }
    }

    /// Pixels as planar f32 [3, H, W], channel order as stored.
    pub fn to_planar(&self) -> Vec<f32> {
        let n = self.width * self.height;
        let mut out = vec![0.0; 3 * n];
        for (i, px) in self.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * n + i] = f32::from(px[c]);
            }
        }
        out
    }
}

/// Decodes PNG / JPEG / WebP bytes to RGB, applying the EXIF orientation as Pillow's
/// `ImageOps.exif_transpose` (what diffusers' `load_image` does). `name` labels errors.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    use image::ImageDecoder;
    let bad = |reason: String| Error::Input {
        name: name.to_string(),
        reason,
    };
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    if reader.format().is_none() {
        return Err(bad("not a PNG, JPEG or WebP image".into()));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| bad(format!("not a readable image: {e}")))?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad(format!(
            "{w}x{h} pixels: sides must be between 1 and {MAX_SIDE}"
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| bad(format!("corrupt image data: {e}")))?;
    img.apply_orientation(orientation);
    let rgb = img.to_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}
