//! Stage inputs that cannot be right are one-line errors, never an internal failure: empty
//! tensors, a batch the loop cannot run, NaN values, an output that would replace an input.

mod common;

use common::*;
use consistentid_core::tensor_io::{NamedTensor, to_safetensors};

fn write_input(dir: &std::path::Path, name: &str, shape: Vec<usize>, value: f32) -> String {
    let n = shape.iter().product();
    let path = dir.join(format!("{name}-{}.safetensors", shape.len()));
    let t = NamedTensor::from_f32(name, shape, &vec![value; n]);
    std::fs::write(&path, to_safetensors(&[t], None).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn bad_stage_inputs_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let model = fixture("sd_tiny");
    let model = model.to_str().unwrap();
    let out = tmp.path().join("out.safetensors");
    let out = out.to_str().unwrap();
    let txt2img = |input: &str, out: &str| {
        expect_error(&[
            "stage",
            "txt2img",
            "--model",
            model,
            "--input",
            input,
            "--prompt",
            "x",
            "--steps",
            "1",
            "--guidance",
            "5",
            "--scheduler",
            "euler",
            "--out",
            out,
        ])
    };
    let empty = write_input(tmp.path(), "init_latents", vec![1, 4, 0, 0], 0.0);
    let err = txt2img(&empty, out);
    assert!(err.contains("empty tensor of shape [1, 4, 0, 0]"), "{err}");

    let sub = tmp.path().join("b3");
    std::fs::create_dir_all(&sub).unwrap();
    let batch3 = write_input(&sub, "init_latents", vec![3, 4, 2, 2], 0.5);
    let err = txt2img(&batch3, out);
    assert!(err.contains("shape [3, 4, 2, 2]: expected [1, "), "{err}");

    let sub = tmp.path().join("nan");
    std::fs::create_dir_all(&sub).unwrap();
    let nan = write_input(&sub, "init_latents", vec![1, 4, 2, 2], f32::NAN);
    let err = txt2img(&nan, out);
    assert!(
        err.contains("NaN or infinite values are not allowed"),
        "{err}"
    );

    // A file that is not safetensors is a bad input, not a "weight file".
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let err = txt2img(junk.to_str().unwrap(), out);
    assert!(
        err.contains("bad input tensor") && err.contains("not a readable safetensors file"),
        "{err}"
    );
    assert!(!err.contains("weight file"), "{err}");

    // The output may not replace the input.
    let err = txt2img(&nan, &nan);
    assert!(err.contains("is one of the input files"), "{err}");
}
