//! The colour overlay the official `FGID_mask.py` writes beside each label map (`*_color.png`,
//! `vis_parsing_maps`): 40 % of the photo, 60 % of a colour per label, white where the label is
//! 0. Only for people to look at; training reads the label map.

use consistentid_core::image::RgbImage;

/// `part_colors` of `FGID_mask.py` as the script writes them: an array cv2 treats as BGR.
const PART_COLORS: [[u8; 3]; 24] = [
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [255, 0, 85],
    [255, 0, 170],
    [0, 255, 0],
    [85, 255, 0],
    [170, 255, 0],
    [0, 255, 85],
    [0, 255, 170],
    [0, 0, 255],
    [85, 0, 255],
    [170, 0, 255],
    [0, 85, 255],
    [0, 170, 255],
    [255, 255, 0],
    [255, 255, 85],
    [255, 255, 170],
    [255, 0, 255],
    [255, 85, 255],
    [255, 170, 255],
    [0, 255, 255],
    [85, 255, 255],
    [170, 255, 255],
];

/// `cv2.addWeighted(BGR(photo), 0.4, colours, 0.6, 0)` written by `cv2.imwrite`, as RGB.
/// The sums are an integer plus 0.4 × a byte, never a tie, so rounding is unambiguous.
///
/// # Shapes
/// `labels`: `photo.width × photo.height`, row-major.
pub fn parsing_color(photo: &RgbImage, labels: &[u8]) -> RgbImage {
    let mut out = photo.clone();
    for (px, &label) in out.data.chunks_exact_mut(3).zip(labels) {
        // BGR colour → the RGB pixel's channels (R from index 2).
        let colour = match label {
            0 => [255.0; 3],
            l => {
                let c = PART_COLORS[usize::from(l).min(PART_COLORS.len() - 1)];
                [f32::from(c[2]), f32::from(c[1]), f32::from(c[0])]
            }
        };
        for (v, c) in px.iter_mut().zip(colour) {
            *v = (f32::from(*v) * 0.4 + c * 0.6)
                .round_ties_even()
                .clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_is_whitened_and_labels_tinted() {
        let photo = RgbImage::from_raw(2, 1, vec![100, 50, 0, 10, 20, 30]).unwrap();
        let out = parsing_color(&photo, &[0, 1]);
        // 0.4·100 + 0.6·255 = 193; label 1 is BGR [255, 85, 0] → RGB (0, 85, 255).
        assert_eq!(out.data, vec![193, 173, 153, 4, 59, 165]);
    }
}
