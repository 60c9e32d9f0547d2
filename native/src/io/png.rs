//! PNG output with the A1111 `parameters` text, stored as an iTXt chunk (UTF-8), so prompts
//! in any language (or with a typographic apostrophe) are kept exactly.

use anyhow::{Result, bail};
use burn::tensor::Tensor;

/// Encodes `[1, 3, H, W]` in [0, 1] as an 8-bit RGB PNG (`round(x * 255)`, as diffusers'
/// `numpy_to_pil`) with a `parameters` iTXt chunk.
pub fn encode_png(image: Tensor<4>, parameters: &str) -> Result<Vec<u8>> {
    let [_, c, h, w] = image.dims();
    if c != 3 {
        bail!("expected an RGB image, got {c} channels");
    }
    // [1, 3, h, w] -> [h, w, 3]
    let hwc = image.reshape([c, h, w]).permute([1, 2, 0]);
    let values = hwc
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the image back from the device: {e:?}"))?;
    let rgb: Vec<u8> = values
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    encode_rgb(&rgb, w as u32, h as u32, parameters)
}

/// Encodes interleaved RGB bytes as a PNG with a `parameters` iTXt chunk.
pub fn encode_rgb(rgb: &[u8], width: u32, height: u32, parameters: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.add_itxt_chunk("parameters".into(), parameters.into())?;
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Encodes 8-bit pixels (RGB or grey) as a plain PNG, as `cv2.imwrite` / Pillow's `save` write
/// the dataset's images.
pub fn encode_pixels(data: &[u8], width: usize, height: usize, grey: bool) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width as u32, height as u32);
    encoder.set_color(if grey {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(data)?;
    writer.finish()?;
    Ok(out)
}
