//! The 19 CelebAMask-HQ classes of `79999_iter.pth` and ConsistentID's five facial regions.

/// Class names in label order (zllrunning's `prepropess_data.py`).
pub const CLASSES: [&str; 19] = [
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
];

/// A facial region as ConsistentID groups them: its name in the official mask dict, the word
/// used in the prompt, and the labels that can supply it (the first present wins).
pub struct Region {
    pub name: &'static str,
    pub word: &'static str,
    pub labels: &'static [u8],
}

/// The regions in the official order (`get_prepare_facemask` iterating the mask dict by label):
/// Face, one eye, one ear, Nose, one lip.
pub const REGIONS: [Region; 5] = [
    Region {
        name: "Face",
        word: "face",
        labels: &[1],
    },
    Region {
        name: "Left_Eye",
        word: "eyes",
        labels: &[4, 5],
    },
    Region {
        name: "Left_Ear",
        word: "ears",
        labels: &[7, 8],
    },
    Region {
        name: "Nose",
        word: "nose",
        labels: &[10],
    },
    Region {
        name: "Upper_Lip",
        word: "mouth",
        labels: &[12, 13],
    },
];

/// The names ConsistentID's `mapping_table` gives the labels used (pairs by their first label).
pub fn official_name(label: u8) -> &'static str {
    match label {
        1 => "Face",
        4 => "Left_Eye",
        5 => "Right_Eye",
        7 => "Left_Ear",
        8 => "Right_Ear",
        10 => "Nose",
        12 => "Upper_Lip",
        13 => "Lower_Lip",
        _ => "",
    }
}
