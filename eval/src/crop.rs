//! The official evaluation helpers' crop (`evaluation/eval_function.py: crop_image`): the
//! bounding box of the pixels brighter than a threshold in Pillow's greyscale, cropped with
//! `Image.crop((left, top, right, bottom))`, which leaves out the last row and column.

use consistentid_core::image::RgbImage;
pub use consistentid_core::image::pil::pil_grey;

/// `crop_image(img, threshold)`; `None` when no pixel is brighter than `threshold` (the
/// official code raises there) or the box is empty (a one-pixel-wide region).
pub fn crop_bright(img: &RgbImage, threshold: u8) -> Option<RgbImage> {
    let (w, h) = (img.width, img.height);
    let (mut top, mut bottom, mut left, mut right) = (usize::MAX, 0, usize::MAX, 0);
    for y in 0..h {
        for x in 0..w {
            let p = &img.data[(y * w + x) * 3..(y * w + x) * 3 + 3];
            if pil_grey(p[0], p[1], p[2]) > threshold {
                top = top.min(y);
                bottom = bottom.max(y);
                left = left.min(x);
                right = right.max(x);
            }
        }
    }
    if top == usize::MAX || right <= left || bottom <= top {
        return None;
    }
    let (cw, ch) = (right - left, bottom - top);
    let mut out = RgbImage::new(cw, ch);
    for y in 0..ch {
        let src = ((top + y) * w + left) * 3;
        out.data[y * cw * 3..(y + 1) * cw * 3].copy_from_slice(&img.data[src..src + cw * 3]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_leaves_out_its_last_row_and_column() {
        let mut img = RgbImage::new(6, 5);
        for (x, y) in [(1, 1), (4, 3)] {
            let i = (y * 6 + x) * 3;
            img.data[i..i + 3].copy_from_slice(&[200, 200, 200]);
        }
        let c = crop_bright(&img, 10).unwrap();
        assert_eq!((c.width, c.height), (3, 2));
        assert_eq!(&c.data[..3], &[200, 200, 200]);
        assert!(crop_bright(&RgbImage::new(4, 4), 10).is_none());
        // Pillow's rounding: pure green 11 is grey 6; white 11 is 11.
        assert_eq!(pil_grey(0, 11, 0), 6);
        assert_eq!(pil_grey(11, 11, 11), 11);
    }
}
