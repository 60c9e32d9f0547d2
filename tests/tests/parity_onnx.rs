//! The ONNX executor against onnxruntime 1.16.3 (fixtures from tests/scripts/gen_onnx.py):
//! every op case and the whole random-weight IResNet / SCRFD-shaped graphs.

use burn::tensor::Device;
use consistentid_core::Error;
use consistentid_core::onnx::{FloatValue, IntValue, OnnxModel, OnnxSession, Value};
use consistentid_core::tensor_io::TensorFile;
use consistentid_tests::{assert_close, fixture};

/// Runs `<case>.onnx` on the inputs of `<case>.safetensors` and compares every output.
fn check_case(case: &str) {
    let dir = fixture("onnx");
    let model_bytes = std::fs::read(dir.join(format!("{case}.onnx"))).unwrap();
    let data = std::fs::read(dir.join(format!("{case}.safetensors"))).unwrap();
    let file = TensorFile::parse(case, &data).unwrap();
    let device = Device::flex();
    let model = OnnxModel::parse(&model_bytes, case).unwrap();
    let session = OnnxSession::new(model, &device).unwrap();
    let inputs = session
        .input_names()
        .iter()
        .map(|name| {
            let value = match file.i64(name) {
                Ok((d, s)) => Value::Int(IntValue::new(s, d)),
                Err(_) => {
                    let (d, s) = file.f32(name).unwrap();
                    Value::Float(FloatValue::from_host(s, d, &device))
                }
            };
            (name.to_string(), value)
        })
        .collect();
    let outputs = session
        .run(inputs)
        .unwrap_or_else(|e| panic!("{case}: {e}"));
    assert!(!outputs.is_empty());
    for (name, value) in outputs {
        let key = format!("expected.{name}");
        let what = format!("{case}/{name}");
        match value {
            Value::Float(f) => {
                let (want, shape) = file.f32(&key).unwrap();
                assert_eq!(f.shape, shape, "{what}: shape");
                assert_close(&what, &f.to_host(), &want);
            }
            Value::Int(i) => {
                let (want, shape) = file.i64(&key).unwrap();
                assert_eq!((i.shape, i.data), (shape, want), "{what}");
            }
        }
    }
}

#[test]
fn every_op_case_matches_onnxruntime() {
    let mut cases: Vec<String> = std::fs::read_dir(fixture("onnx"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .filter(|c| !c.starts_with("iresnet") && !c.starts_with("scrfd"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} op cases found", cases.len());
    for case in &cases {
        check_case(case);
    }
}

#[test]
fn iresnet50_replica_matches_onnxruntime() {
    check_case("iresnet50_tiny");
}

#[test]
fn iresnet100_replica_matches_onnxruntime() {
    check_case("iresnet100_tiny");
}

#[test]
fn scrfd_replica_matches_onnxruntime() {
    check_case("scrfd_tiny");
}

#[test]
fn bad_files_are_clear_errors() {
    let bytes = std::fs::read(fixture("onnx/iresnet50_tiny.onnx")).unwrap();
    // Truncated anywhere: a protobuf or data-length error, never a panic.
    for cut in [10, bytes.len() / 3, bytes.len() - 7] {
        let err = OnnxModel::parse(&bytes[..cut], "cut.onnx").unwrap_err();
        assert!(matches!(err, Error::WeightFile { .. }), "{err}");
    }
    let err = OnnxModel::parse(b"not an onnx file at all", "x.onnx").unwrap_err();
    assert!(err.to_string().contains("x.onnx"), "{err}");

    // An op outside the set names the op and the node.
    let erf = std::fs::read(fixture("onnx/unsupported_erf.onnx")).unwrap();
    let err = OnnxModel::parse(&erf, "erf.onnx").map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedOp { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "unsupported ONNX op `Erf` (node `the_erf`)"
    );
}

#[test]
fn wrong_inputs_are_clear_errors() {
    let bytes = std::fs::read(fixture("onnx/iresnet50_tiny.onnx")).unwrap();
    let device = Device::flex();
    let session = OnnxSession::new(OnnxModel::parse(&bytes, "r50").unwrap(), &device).unwrap();
    let wrong = FloatValue::from_host(vec![1, 3, 64, 64], vec![0.0; 3 * 64 * 64], &device);
    let err = session
        .run(vec![("input.1".into(), Value::Float(wrong.clone()))])
        .unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    let err = session
        .run(vec![("image".into(), Value::Float(wrong))])
        .unwrap_err();
    assert!(err.to_string().contains("input.1"), "{err}");
}
