//! 8-bit RGB images: decoding (with EXIF orientation) and the exact resampling routines of the
//! reference libraries whose rounding the pipeline's numerics depend on.

pub mod canny;
pub mod cv;
pub mod pil;
pub mod torch_resize;
pub mod vae_processor;

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
///
/// This is the pure-Rust path (the browser's); native builds decode JPEG with libjpeg-turbo
/// instead, as Pillow does, and use [`check_header`] and [`orient`] around it.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    let header = check_header(bytes, name)?;
    let decoder = header_decoder(bytes, name)?;
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(|e| bad(name, format!("corrupt image data: {e}")))?;
    Ok(orient(to_rgb(img), header.orientation))
}

/// Decoded pixels beyond this are refused before decoding (a decompression-bomb guard: 50 MP
/// is a large phone photo).
pub const MAX_PIXELS: u64 = 50_000_000;
/// The longer side may be at most this many times the shorter (the resizes that follow cost
/// memory in proportion to the longer side).
pub const MAX_ASPECT: u32 = 20;

/// What the header of an image file says, read without decoding its pixels.
#[derive(Clone, Copy, Debug)]
pub struct ImageHeader {
    pub format: image::ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The EXIF orientation to apply after decoding.
    pub orientation: image::metadata::Orientation,
}

fn bad(name: &str, reason: String) -> Error {
    Error::Image {
        name: name.to_string(),
        reason,
    }
}

fn header_decoder<'a>(bytes: &'a [u8], name: &str) -> Result<impl image::ImageDecoder + 'a> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(name, format!("cannot read: {e}")))?;
    if reader.format().is_none() {
        return Err(bad(name, "not a PNG, JPEG or WebP image".into()));
    }
    reader
        .into_decoder()
        .map_err(|e| bad(name, format!("not a readable image: {e}")))
}

/// Reads the format, size and orientation, and refuses empty, huge (over [`MAX_SIDE`] a side
/// or [`MAX_PIXELS`]) and extremely elongated images, all before any pixel is decoded.
pub fn check_header(bytes: &[u8], name: &str) -> Result<ImageHeader> {
    use image::ImageDecoder;
    let format = image::guess_format(bytes)
        .map_err(|_| bad(name, "not a PNG, JPEG or WebP image".into()))?;
    let mut decoder = header_decoder(bytes, name)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad(
            name,
            format!("{w}x{h} pixels: sides must be between 1 and {MAX_SIDE}"),
        ));
    }
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(
            name,
            format!(
                "{w}x{h} pixels is more than {} megapixels",
                MAX_PIXELS / 1_000_000
            ),
        ));
    }
    if w.max(h) > MAX_ASPECT * w.min(h) {
        return Err(bad(
            name,
            format!("{w}x{h} pixels: the sides differ by more than {MAX_ASPECT}:1"),
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    Ok(ImageHeader {
        format,
        width: w,
        height: h,
        orientation,
    })
}

fn to_rgb(img: image::DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    }
}

/// `img` turned upright by an EXIF orientation (rotations and flips are exact).
pub fn orient(img: RgbImage, orientation: image::metadata::Orientation) -> RgbImage {
    if orientation == image::metadata::Orientation::NoTransforms {
        return img;
    }
    let buffer = image::RgbImage::from_raw(img.width as u32, img.height as u32, img.data)
        .expect("RgbImage holds width * height * 3 bytes");
    let mut dynamic = image::DynamicImage::ImageRgb8(buffer);
    dynamic.apply_orientation(orientation);
    to_rgb(dynamic)
}
