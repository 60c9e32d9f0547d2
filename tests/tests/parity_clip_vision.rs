//! The image networks (CLIP, the whole CLIP, DINO's ViT, the FID Inception) and their inputs against
//! their reference code (transformers 4.31, pytorch-fid 0.3.0) on the real photos
//! (tests/scripts/gen_clip_vision.py, gen_clip_model.py, gen_vit.py, gen_fid_inception.py).

use burn::tensor::{DType, Device, Tensor, TensorData};
use consistentid_core::clip::ClipVisionModelWithProjection;
use consistentid_core::clip::image_processor::{normalize, resize_and_crop};
use consistentid_core::tensor_io::TensorFile;
use consistentid_native::io::image::decode;
use consistentid_native::source::DirSource;
use consistentid_tests::{assert_close, fixture, real_data};

#[test]
fn preprocessing_and_tower_match_transformers() {
    let (_, source, bytes) = tiny_folder("clip_vision_tiny");
    let device = Device::flex();
    let model =
        ClipVisionModelWithProjection::load(&source, "", None, DType::F32, &device).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    for (photo, rel) in PHOTOS {
        let img = decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap();
        let crop = resize_and_crop(&img, 224);
        let (ref_crop, _) = want.i64(&format!("{photo}.crop")).unwrap();
        let worst = crop
            .data
            .iter()
            .zip(&ref_crop)
            .map(|(a, b)| (i64::from(*a) - b).abs())
            .max()
            .unwrap();
        // Pillow's decode (libjpeg-turbo) and BICUBIC resize reproduced exactly.
        assert_eq!(worst, 0, "{photo}: crop differs by {worst}");

        // The arithmetic of rescale + normalise, bit for bit, on the reference crop.
        let ref_img = consistentid_core::image::RgbImage::from_raw(
            224,
            224,
            ref_crop.iter().map(|&v| v as u8).collect(),
        )
        .unwrap();
        let pixels = normalize(&ref_img);
        let (corner, _) = want.f32(&format!("{photo}.pixel_values_corner")).unwrap();
        for c in 0..3 {
            for y in 0..16 {
                for x in 0..16 {
                    assert_eq!(
                        pixels[c * 224 * 224 + y * 224 + x],
                        corner[c * 256 + y * 16 + x]
                    );
                }
            }
        }

        let x: Tensor<4> = Tensor::from_data(TensorData::new(pixels, [1, 3, 224, 224]), &device);
        let out = model.forward(x).unwrap();
        let pen = out.penultimate().into_data().try_to_vec::<f32>().unwrap();
        assert_close(
            &format!("{photo} penultimate"),
            &pen,
            &want
                .f32(&format!("{photo}.penultimate_hidden_state"))
                .unwrap()
                .0,
        );
        let emb = out.image_embeds.into_data().try_to_vec::<f32>().unwrap();
        assert_close(
            &format!("{photo} image_embeds"),
            &emb,
            &want.f32(&format!("{photo}.image_embeds")).unwrap().0,
        );
    }
}

#[test]
fn wrong_input_size_is_an_error() {
    let source = DirSource::open(fixture("clip_vision_tiny")).unwrap();
    let device = Device::flex();
    let model =
        ClipVisionModelWithProjection::load(&source, "", None, DType::F32, &device).unwrap();
    let err = model
        .forward(Tensor::zeros([1, 3, 200, 200], &device))
        .err()
        .unwrap();
    assert!(err.to_string().contains("224"), "{err}");
}

/// The whole CLIP (`CLIPModel`: both towers and projections, one folder with its tokenizer)
/// against transformers 4.31's `get_text_features` / `get_image_features`
/// (tests/scripts/gen_clip_model.py): what CLIP-T and CLIP-I use.
#[test]
fn whole_clip_model_projects_text_and_images_as_transformers() {
    let (dir, source, bytes) = tiny_folder("clip_model_tiny");
    let device = Device::flex();
    let model = consistentid_core::clip::ClipModel::load(&source, "", &device).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let prompts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("prompts.json")).unwrap()).unwrap();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let text: Vec<f32> = model.text_embeds(&prompts, &device).unwrap().concat();
    assert_close("text_embeds", &text, &want.f32("text_embeds").unwrap().0);
    let photos = photos();
    let image: Vec<f32> = model.image_embeds(&photos, &device).unwrap().concat();
    assert_close("image_embeds", &image, &want.f32("image_embeds").unwrap().0);
}

/// The DINO metric's ViT (transformers `ViTModel`, facebook/dino-vits16's architecture) and
/// `ViTImageProcessor` against transformers 4.31 on the real photos (tests/scripts/gen_vit.py).
#[test]
fn vit_class_token_matches_transformers() {
    let (_, source, bytes) = tiny_folder("vit_tiny");
    let device = Device::flex();
    let model = consistentid_core::vit::ViTModel::load(&source, "", &device).unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    let photos = photos();
    let pixels: Vec<f32> = photos.iter().flat_map(|p| model.preprocess(p)).collect();
    assert_close(
        "pixel_values",
        &pixels,
        &want.f32("pixel_values").unwrap().0,
    );
    let cls: Vec<f32> = model.embed(&photos, &device).unwrap().concat();
    assert_close("class token", &cls, &want.f32("cls").unwrap().0);
}

/// The FID network: pytorch-fid's `InceptionV3` pool features (its FIDInception patches on
/// torchvision's Inception3, at 1/16 width with random weights) of the real photos, each fed
/// whole as pytorch-fid's dataset feeds it (tests/scripts/gen_fid_inception.py).
#[test]
fn fid_inception_matches_pytorch_fid() {
    let (dir, _, bytes) = tiny_folder("fid_tiny");
    let net = consistentid_core::inception::FidInception::load(
        &std::fs::read(dir.join("inception.pt")).unwrap(),
        "inception.pt",
        &Device::flex(),
    )
    .unwrap();
    let want = TensorFile::parse("expected", &bytes).unwrap();
    for (photo, rel) in PHOTOS {
        let img = decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap();
        let got = net.features(&[img]).unwrap().remove(0);
        assert_close(photo, &got, &want.f32(photo).unwrap().0);
    }
}

/// The two real photos: (name, path in the real data).
const PHOTOS: [(&str, &str); 2] = [
    ("astronaut", "images/astronaut.png"),
    ("grace_hopper", "images/grace_hopper.jpg"),
];

/// The two real photos, decoded.
fn photos() -> Vec<consistentid_core::image::RgbImage> {
    PHOTOS
        .iter()
        .map(|(_, rel)| decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap())
        .collect()
}

/// A tiny model folder of the fixtures: its path, a source on it, its `expected.safetensors`.
fn tiny_folder(name: &str) -> (std::path::PathBuf, DirSource, Vec<u8>) {
    let dir = fixture(name);
    let source = DirSource::open(&dir).unwrap();
    let bytes = std::fs::read(dir.join("expected.safetensors")).unwrap();
    (dir, source, bytes)
}
