//! The hand-written schema against files written by the onnx Python package: decoding
//! and re-encoding must reproduce them byte for byte, which pins every field number,
//! wire type and packing the fixtures use (and is what a later export relies on).

use std::path::{Path, PathBuf};

use prost::Message;
use smelt_onnx::proto::ModelProto;

fn round_trip(path: &Path) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = ModelProto::decode(bytes::Bytes::from(data.clone()))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        model.encode_to_vec() == data,
        "{} does not re-encode identically",
        path.display()
    );
}

#[test]
fn fixtures_re_encode_identically() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "onnx") && !path.ends_with("truncated.onnx") {
            round_trip(&path);
            n += 1;
        }
    }
    assert!(n >= 10);
    round_trip(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/models/tiny_bert.onnx"
    )));
}
