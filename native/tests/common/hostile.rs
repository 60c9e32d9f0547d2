//! Helpers of the tests of the host under hostile and careless use (serve_load.rs,
//! serve_hardening.rs): the real photo, a creation body with a fixed identity, and PNGs that
//! are tiny on disk but huge decoded.

use std::io::Write;

use serde_json::{Value, json};

use super::host::*;
use super::real_data;

pub fn astronaut() -> Vec<u8> {
    std::fs::read(real_data("images/astronaut.png")).unwrap()
}

/// A creation body on an uploaded face (or data URI), with a fixed identity (no detection).
pub fn body(face: &str, steps: u32, keep_face: bool) -> Value {
    json!({ "input": {
        "prompt": "x", "face_image": face, "id_embedding": vec![0.0; 512],
        "num_inference_steps": steps, "start_merge_step": 0, "width": 32, "height": 32,
        "keep_face": keep_face
    }})
}

pub fn create(host: &Host, body: &Value) -> Value {
    let (code, p) = post_json(&host.url("/v1/predictions"), Some(TOKEN), body, &[]);
    assert_eq!(code, 201, "{p}");
    p
}

/// A PNG of `w`×`h` 16-bit RGBA pixels (tiny on disk, 8 bytes a pixel decoded).
pub fn png16(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Sixteen);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        let row = vec![0u8; w as usize * 8];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..h {
            stream.write_all(&row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}
