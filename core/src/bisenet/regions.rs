//! Facial-region masks from a label map, as ConsistentID's `masks_for_unique_values` and
//! `get_prepare_facemask`, and the region images fed to the CLIP vision tower.
//!
//! OpenCV's `findContours(RETR_EXTERNAL)` + filled `drawContours` paints every 8-connected
//! component together with its holes. A pixel is inside some external contour exactly when it
//! cannot reach the image border through 4-connected non-member pixels, which is what
//! [`fill_holes`] computes.

use super::labels::{REGIONS, Region};
use crate::image::RgbImage;
use crate::image::pil::{Filter, composite_over_black, resize_gray};

/// A binary mask, row-major, `true` inside.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<bool>,
}

impl Mask {
    /// As a Pillow 'L' image: 255 inside, 0 outside.
    pub fn to_l(&self) -> Vec<u8> {
        self.data.iter().map(|&b| if b { 255 } else { 0 }).collect()
    }
}

/// The member pixels plus every hole: pixels from which the border is unreachable through
/// 4-connected non-members.
pub fn fill_holes(member: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut outside = vec![false; member.len()];
    let mut stack = Vec::new();
    let push = |i: usize, outside: &mut Vec<bool>, stack: &mut Vec<usize>| {
        if !member[i] && !outside[i] {
            outside[i] = true;
            stack.push(i);
        }
    };
    for x in 0..width {
        push(x, &mut outside, &mut stack);
        push((height - 1) * width + x, &mut outside, &mut stack);
    }
    for y in 0..height {
        push(y * width, &mut outside, &mut stack);
        push(y * width + width - 1, &mut outside, &mut stack);
    }
    while let Some(i) = stack.pop() {
        let (x, y) = (i % width, i / width);
        if x > 0 {
            push(i - 1, &mut outside, &mut stack);
        }
        if x + 1 < width {
            push(i + 1, &mut outside, &mut stack);
        }
        if y > 0 {
            push(i - width, &mut outside, &mut stack);
        }
        if y + 1 < height {
            push(i + width, &mut outside, &mut stack);
        }
    }
    outside.into_iter().map(|o| !o).collect()
}

/// `masks_for_unique_values`: for every label present (ascending), its filled mask.
pub fn label_masks(labels: &[u8], width: usize, height: usize) -> Vec<(u8, Mask)> {
    let mut present = [false; 256];
    for &l in labels {
        present[l as usize] = true;
    }
    (0..=255u8)
        .filter(|&v| present[v as usize])
        .map(|v| {
            let member: Vec<bool> = labels.iter().map(|&l| l == v).collect();
            let data = fill_holes(&member, width, height);
            (
                v,
                Mask {
                    width,
                    height,
                    data,
                },
            )
        })
        .collect()
}

/// Training's "WithoutBackground" mask: the complement of the filled background (label 0).
pub fn without_background(labels: &[u8], width: usize, height: usize) -> Mask {
    let member: Vec<bool> = labels.iter().map(|&l| l == 0).collect();
    let data = fill_holes(&member, width, height)
        .into_iter()
        .map(|b| !b)
        .collect();
    Mask {
        width,
        height,
        data,
    }
}

/// The facial regions ConsistentID keeps, in its order (Face, Eye, Ear, Nose, Mouth): for each,
/// the first of its labels present in the map, and that label's filled mask.
pub fn facial_regions(
    labels: &[u8],
    width: usize,
    height: usize,
) -> Vec<(&'static Region, u8, Mask)> {
    let masks = label_masks(labels, width, height);
    REGIONS
        .iter()
        .filter_map(|region| {
            region.labels.iter().find_map(|&l| {
                masks
                    .iter()
                    .find(|(v, _)| *v == l)
                    .map(|(_, m)| (region, l, m.clone()))
            })
        })
        .collect()
}

/// The region image: `Image.composite(img, black, mask.resize(img.size))`, the mask resized
/// with Pillow's default filter for 'L' images (BICUBIC).
pub fn region_image(img: &RgbImage, mask: &Mask) -> RgbImage {
    let l = mask.to_l();
    let resized = if (mask.width, mask.height) == (img.width, img.height) {
        l
    } else {
        resize_gray(
            &l,
            mask.width,
            mask.height,
            img.width,
            img.height,
            Filter::Bicubic,
        )
    };
    composite_over_black(img, &resized)
}
