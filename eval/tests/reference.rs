//! The evaluation's numerics against their references, from fixtures written by pinned Python
//! scripts: the Fréchet distance against pytorch-fid's computation with scipy's `sqrtm`
//! (`tests/scripts/gen_frechet.py`), and the official `crop_image` against Pillow
//! (`tests/scripts/gen_eval_crop.py`).

use consistentid_core::image::RgbImage;
use consistentid_eval::crop::crop_bright;
use consistentid_eval::frechet::{Gaussian, frechet_distance};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/eval")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn features(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

#[test]
fn frechet_distance_equals_pytorch_fid_with_scipy() {
    for case in fixture("frechet.json")["cases"].as_array().unwrap() {
        let a = Gaussian::fit(&features(&case["a"])).unwrap();
        let b = Gaussian::fit(&features(&case["b"])).unwrap();
        let got = frechet_distance(&a, &b).unwrap();
        let want = case["distance"].as_f64().unwrap();
        let rel = (got - want).abs() / want.abs();
        // scipy's sqrtm of a singular product is itself only accurate to ~1e-8 relative.
        let tolerance = if case["name"] == "full_rank" {
            1e-9
        } else {
            1e-6
        };
        assert!(
            rel <= tolerance,
            "{}: {got} vs {want} ({rel:e})",
            case["name"]
        );
    }
}

#[test]
fn crop_equals_the_official_crop_image_under_pillow() {
    let f = fixture("crop.json");
    let threshold = f["threshold"].as_u64().unwrap() as u8;
    for case in f["cases"].as_array().unwrap() {
        let bytes = |k: &str| -> Vec<u8> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u8)
                .collect()
        };
        let size = |k: &str| case[k].as_u64().unwrap() as usize;
        let img = RgbImage::from_raw(size("width"), size("height"), bytes("rgb")).unwrap();
        let crop = crop_bright(&img, threshold).unwrap();
        assert_eq!(
            (crop.width, crop.height),
            (size("crop_width"), size("crop_height"))
        );
        assert_eq!(crop.data, bytes("crop_rgb"));
    }
}
