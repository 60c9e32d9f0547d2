//! The asynchronous read-back paths the browser needs (WebGPU cannot read a buffer while the
//! page waits): BlazeFace and BiSeNet give the same results through them as through the
//! blocking reads, on the real BlazeFace weights and the tiny BiSeNet.

use burn::tensor::Device;
use consistentid_core::bisenet::BiSeNet;
use consistentid_core::face::blazeface::BlazeFace;
use consistentid_core::image::RgbImage;
use consistentid_core::onnx::OnnxModel;
use consistentid_core::poll::block_on;
use consistentid_native::io::image::decode;
use consistentid_tests::{fixture, real_data};

fn photo(rel: &str) -> RgbImage {
    decode(&std::fs::read(real_data(rel)).unwrap(), rel).unwrap()
}

#[test]
fn blazeface_reads_back_the_same_faces_asynchronously() {
    let file = "face_detection_front_128x128_barracuda.onnx";
    let bytes = std::fs::read(real_data(&format!("blazeface/{file}"))).unwrap();
    let net = BlazeFace::new(OnnxModel::parse(&bytes, file).unwrap(), &Device::flex()).unwrap();
    let img = photo("images/astronaut.png");
    let sync = net.detect(&img).unwrap();
    assert!(!sync.is_empty(), "the astronaut's face is found");
    let asynchronous = block_on(net.detect_async(&img)).unwrap();
    assert_eq!(sync, asynchronous);
}

#[test]
fn bisenet_reads_back_the_same_label_map_asynchronously() {
    let device = Device::flex();
    let weights = std::fs::read(fixture("bisenet_tiny/face_parsing.pth")).unwrap();
    let net = BiSeNet::load(&weights, "face_parsing.pth", &device).unwrap();
    let img = photo("images/grace_hopper.jpg");
    let sync = net.label_map(&img, &device).unwrap();
    assert_eq!(sync.len(), 512 * 512);
    assert!(sync.iter().any(|&l| l != sync[0]), "more than one class");
    let asynchronous = block_on(net.label_map_async(&img, &device)).unwrap();
    assert_eq!(sync, asynchronous);
}
