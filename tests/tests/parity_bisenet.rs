//! BiSeNet, the facial-region masks and the region images against the references of
//! tests/scripts/gen_bisenet.py (facexlib's BiSeNet code, OpenCV contour filling, Pillow).

use burn::tensor::{Device, Tensor, TensorData};
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::bisenet::preprocess::preprocess;
use consistentid_core::bisenet::regions::{
    Mask, facial_regions, label_masks, region_image, without_background,
};
use consistentid_core::image::RgbImage;
use consistentid_core::image::pil::{Filter, resize};
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_tests::{assert_close, fixture, real_data};

const PHOTOS: [(&str, &str); 2] = [
    ("astronaut", "images/astronaut.png"),
    ("grace_hopper", "images/grace_hopper.jpg"),
];

fn photo(rel: &str) -> RgbImage {
    decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap()
}

#[test]
fn bisenet_matches_facexlib() {
    let dir = fixture("bisenet_tiny");
    let device = Device::flex();
    let net = BiSeNet::load(
        &std::fs::read(dir.join("face_parsing.pth")).unwrap(),
        "face_parsing.pth",
        &device,
    )
    .unwrap();
    assert_eq!(net.num_classes, 19);
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    for (name, rel) in PHOTOS {
        let img = photo(rel);
        let resized = resize(&img, 512, 512, Filter::Bilinear);
        let (patch, _) = want.i64(&format!("{name}.resized_patch")).unwrap();
        let mut worst = 0;
        for y in 0..64 {
            for x in 0..64 {
                for c in 0..3 {
                    let d = (i64::from(resized.at(224 + x, 224 + y, c))
                        - patch[(y * 64 + x) * 3 + c])
                        .abs();
                    worst = worst.max(d);
                }
            }
        }
        // JPEG is decoded as Pillow decodes it, so both photos resize exactly.
        assert_eq!(worst, 0, "{name}: Pillow bilinear differs by {worst}");
        let x: Tensor<4> =
            Tensor::from_data(TensorData::new(preprocess(&img), [1, 3, 512, 512]), &device);
        let out = net.forward(x);
        let logits = out.logits.slice([0..1, 0..19, 240..272, 240..272]);
        let got = logits.into_data().try_to_vec::<f32>().unwrap();
        assert_close(
            &format!("{name} logits"),
            &got,
            &want.f32(&format!("{name}.logits_patch")).unwrap().0,
        );
        let labels: Vec<i64> = out
            .labels
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        // argmax may flip where two logits tie within float noise.
        if let Ok((ref_labels, _)) = want.i64(&format!("{name}.labels")) {
            let differ = labels
                .iter()
                .zip(&ref_labels)
                .filter(|(a, b)| a != b)
                .count();
            assert!(differ <= 5, "{name}: {differ} labels differ");
        }
        let (ref_counts, _) = want.i64(&format!("{name}.label_counts")).unwrap();
        let mut counts = vec![0i64; ref_counts.len()];
        for &l in &labels {
            counts[l as usize] += 1;
        }
        let moved: i64 = counts
            .iter()
            .zip(&ref_counts)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(
            moved <= 10,
            "{name}: label counts {counts:?} vs {ref_counts:?}"
        );
    }
}

#[test]
fn wrong_parsing_weights_are_clear_errors() {
    let device = Device::flex();
    let bytes = std::fs::read(fixture("bisenet_tiny/face_parsing.pth")).unwrap();
    let err = BiSeNet::load(&bytes[..bytes.len() / 2], "cut.pth", &device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("cut.pth"), "{err}");
    let err = BiSeNet::load(b"not a torch file", "x.pth", &device)
        .err()
        .unwrap();
    assert!(err.to_string().contains("x.pth"), "{err}");
    let mtcnn = std::fs::read(real_data("mtcnn/pnet.pt")).unwrap();
    let err = BiSeNet::load(&mtcnn, "pnet.pt", &device).err().unwrap();
    assert!(err.to_string().contains("not a BiSeNet"), "{err}");
}

fn unpack(bits: &[i64], n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| (bits[i / 8] >> (7 - i % 8)) & 1 == 1)
        .collect()
}

#[test]
fn region_masks_match_opencv_and_composite_matches_pillow() {
    for (name, _) in PHOTOS {
        let bytes = std::fs::read(fixture(&format!("regions/{name}.safetensors"))).unwrap();
        let f = TensorFile::parse(name, &bytes).unwrap();
        let (labels, shape) = f.i64("labels").unwrap();
        let (h, w) = (shape[0], shape[1]);
        let labels: Vec<u8> = labels.into_iter().map(|v| v as u8).collect();
        let (values, _) = f.i64("values").unwrap();
        let (filled, fshape) = f.i64("filled").unwrap();
        let ours = label_masks(&labels, w, h);
        assert_eq!(
            ours.iter().map(|(v, _)| i64::from(*v)).collect::<Vec<_>>(),
            values
        );
        for (k, (v, mask)) in ours.iter().enumerate() {
            let row = &filled[k * fshape[1]..(k + 1) * fshape[1]];
            let want = unpack(row, w * h);
            let differ = mask.data.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ, 0,
                "{name}: label {v}: {differ} pixels differ from OpenCV"
            );
        }
        // Training's "WithoutBackground": the complement of the filled background.
        let (bits, _) = f.i64("without_background").unwrap();
        let wb = without_background(&labels, w, h);
        assert_eq!(wb.data, unpack(&bits, w * h), "{name}: WithoutBackground");
        // Region image: a 64x64 mask upsampled (BICUBIC) and composited over black.
        let (img_data, ishape) = f.i64("composite").unwrap();
        let (mask_l, mshape) = f.i64("composite_mask").unwrap();
        let small_photo = resize(
            &photo(PHOTOS.iter().find(|p| p.0 == name).unwrap().1),
            ishape[1],
            ishape[0],
            Filter::Bilinear,
        );
        let mask = Mask {
            width: mshape[1],
            height: mshape[0],
            data: mask_l.iter().map(|&v| v > 127).collect(),
        };
        assert!(mask_l.iter().all(|&v| v == 0 || v == 255));
        let ours = region_image(&small_photo, &mask);
        let worst = ours
            .data
            .iter()
            .zip(&img_data)
            .map(|(a, b)| (i64::from(*a) - b).abs())
            .max()
            .unwrap();
        assert_eq!(worst, 0, "{name}: composite differs by {worst}");
    }
}

#[test]
fn facial_regions_follow_the_official_order() {
    // A synthetic map: skin (1) with both eyes (4, 5), the right ear only (8), nose, lower lip.
    let (w, h) = (40, 40);
    let mut labels = vec![0u8; w * h];
    let mut paint = |x0: usize, y0: usize, x1: usize, y1: usize, v: u8| {
        for y in y0..y1 {
            for x in x0..x1 {
                labels[y * w + x] = v;
            }
        }
    };
    paint(5, 5, 35, 35, 1);
    paint(10, 10, 14, 13, 5);
    paint(25, 10, 29, 13, 4);
    paint(35, 15, 38, 22, 8);
    paint(18, 16, 22, 22, 10);
    paint(15, 26, 25, 29, 13);
    let regions = facial_regions(&labels, w, h);
    let got: Vec<(&str, u8)> = regions.iter().map(|(r, l, _)| (r.word, *l)).collect();
    assert_eq!(
        got,
        [
            ("face", 1),
            ("eyes", 4),
            ("ears", 8),
            ("nose", 10),
            ("mouth", 13)
        ]
    );
    // The face mask has the eyes, nose and lip filled in (holes), not the ear outside it.
    let face = &regions[0].2;
    assert!(face.data[11 * w + 12] && face.data[20 * w + 20] && !face.data[18 * w + 36]);
}
