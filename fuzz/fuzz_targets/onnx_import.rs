//! Arbitrary bytes through the ONNX importer: Ok or a clean error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = smelt::onnx::import_bytes(bytes::Bytes::copy_from_slice(data), None);
});
