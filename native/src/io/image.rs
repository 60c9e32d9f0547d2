//! Reading face photos: JPEG through libjpeg-turbo (the decoder Pillow and OpenCV use: islow
//! IDCT, fancy chroma upsampling), so the pipeline sees the official pipeline's pixels; every
//! other format through core's pure-Rust decoder. Sizes are checked before decoding.

use std::path::Path;

use anyhow::{Context, Result};
use consistentid_core::Error;
use consistentid_core::image::{RgbImage, check_header, orient};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

/// Reads and decodes an image file; errors name the file.
pub fn read_image(path: &Path) -> Result<RgbImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
    Ok(decode(&bytes, &path.display().to_string())?)
}

/// Decodes PNG / JPEG / WebP bytes to upright RGB (EXIF orientation applied, as diffusers'
/// `load_image`). `name` labels errors.
pub fn decode(bytes: &[u8], name: &str) -> consistentid_core::Result<RgbImage> {
    let header = check_header(bytes, name)?;
    if header.format != image::ImageFormat::Jpeg {
        return consistentid_core::image::decode(bytes, name);
    }
    let img = decode_jpeg(bytes).map_err(|reason| Error::Image {
        name: name.to_string(),
        reason,
    })?;
    Ok(orient(img, header.orientation))
}

/// libjpeg-turbo's decode, converted to RGB as Pillow's `Image.convert("RGB")` does. A
/// truncated or corrupt file is an error (libjpeg only warns; Pillow refuses it too).
fn decode_jpeg(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let mut d = Decompressor::new().map_err(|e| e.to_string())?;
    let header = d
        .read_header(bytes)
        .map_err(|e| format!("corrupt JPEG: {e}"))?;
    let (w, h) = (header.width, header.height);
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, channels) = if cmyk {
        (PixelFormat::CMYK, 4)
    } else {
        (PixelFormat::RGB, 3)
    };
    let mut pixels = vec![0u8; w * h * channels];
    let out = Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * channels,
        height: h,
        format,
    };
    d.decompress(bytes, out)
        .map_err(|e| format!("corrupt or truncated JPEG: {e}"))?;
    let data = if cmyk { cmyk_to_rgb(&pixels) } else { pixels };
    Ok(RgbImage {
        width: w,
        height: h,
        data,
    })
}

/// Pillow's CMYK JPEG path: the stored values are Adobe-inverted (Pillow's `CMYK;I` raw mode),
/// then `cmyk2rgb`: `255 - k' - c·(255 - k')/255` per channel, with Pillow's rounding.
fn cmyk_to_rgb(inverted: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(inverted.len() / 4 * 3);
    for px in inverted.chunks_exact(4) {
        let nk = i32::from(px[3]); // 255 - k, with k = 255 - stored
        for &stored in &px[..3] {
            let c = 255 - i32::from(stored);
            out.push((nk - muldiv255(c, nk)).clamp(0, 255) as u8);
        }
    }
    out
}
