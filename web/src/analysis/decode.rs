//! A photo file to the RGB pixels the analysis and the host both use: decoded by the browser
//! with its EXIF orientation applied, without colour management (as Pillow, which ignores ICC
//! profiles), scaled down when very large, and encoded again losslessly (PNG) for the host.

use consistentid_core::image::RgbImage;
use leptos::web_sys;
use wasm_bindgen::JsCast;

use super::js_error;
use super::scope::create_image_bitmap;

/// Photos larger than this (longest side, pixels) are scaled down first: the face analysis
/// never needs more, and the lossless copy sent to the host stays well under its upload limit.
pub const MAX_SIDE: u32 = 1536;

/// The decoded photo, and whether it was scaled down (from its original size).
pub struct Decoded {
    pub image: RgbImage,
    pub scaled_from: Option<(u32, u32)>,
}

async fn bitmap(
    file: &web_sys::Blob,
    size: Option<(u32, u32)>,
) -> Result<web_sys::ImageBitmap, String> {
    let options = web_sys::ImageBitmapOptions::new();
    options.set_image_orientation(web_sys::ImageOrientation::FromImage);
    options.set_color_space_conversion(web_sys::ColorSpaceConversion::None);
    options.set_premultiply_alpha(web_sys::PremultiplyAlpha::None);
    if let Some((w, h)) = size {
        options.set_resize_width(w);
        options.set_resize_height(h);
        options.set_resize_quality(web_sys::ResizeQuality::High);
    }
    create_image_bitmap(file, &options).await
}

/// Decodes `file` (PNG, JPEG or WebP) to RGB.
pub async fn decode(file: &web_sys::Blob) -> Result<Decoded, String> {
    let mut bmp = bitmap(file, None).await?;
    let (w, h) = (bmp.width(), bmp.height());
    if w == 0 || h == 0 {
        return Err("the image is empty".into());
    }
    let mut scaled_from = None;
    if w.max(h) > MAX_SIDE {
        let scale = f64::from(MAX_SIDE) / f64::from(w.max(h));
        let size = (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        );
        bmp.close();
        bmp = bitmap(file, Some(size)).await?;
        scaled_from = Some((w, h));
    }
    let (w, h) = (bmp.width(), bmp.height());
    // An offscreen canvas: there is none other in a worker.
    let canvas = web_sys::OffscreenCanvas::new(w, h).map_err(js_error)?;
    let ctx: web_sys::OffscreenCanvasRenderingContext2d = canvas
        .get_context("2d")
        .map_err(js_error)?
        .ok_or("no 2D canvas")?
        .unchecked_into();
    ctx.draw_image_with_image_bitmap(&bmp, 0.0, 0.0)
        .map_err(js_error)?;
    bmp.close();
    let rgba = ctx
        .get_image_data(0.0, 0.0, f64::from(w), f64::from(h))
        .map_err(js_error)?
        .data();
    let data = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Ok(Decoded {
        image: RgbImage {
            width: w as usize,
            height: h as usize,
            data,
        },
        scaled_from,
    })
}

/// The pixels as a PNG file (lossless: the host decodes exactly these pixels).
pub fn png(image: &RgbImage) -> Result<Vec<u8>, String> {
    encode_png(
        &image.data,
        image.width,
        image.height,
        image::ColorType::Rgb8,
    )
}

/// Grey pixels (one byte each) as an 8-bit greyscale PNG.
pub fn grey_png(data: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    encode_png(data, width, height, image::ColorType::L8)
}

/// A label map (one byte per pixel) as an 8-bit greyscale PNG.
pub fn label_png(labels: &[u8], side: usize) -> Result<Vec<u8>, String> {
    encode_png(labels, side, side, image::ColorType::L8)
}

fn encode_png(
    data: &[u8],
    width: usize,
    height: usize,
    color: image::ColorType,
) -> Result<Vec<u8>, String> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(data, width as u32, height as u32, color.into())
        .map_err(|e| format!("cannot encode the PNG: {e}"))?;
    Ok(out)
}
