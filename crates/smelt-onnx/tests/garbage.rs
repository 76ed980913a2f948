//! Untrusted input: random bytes, every truncation and random corruptions of small real
//! models must give an error (or a graph), never a panic or a runaway allocation.

use std::path::PathBuf;

use bytes::Bytes;
use smelt_onnx::import_bytes;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

/// xorshift64*: deterministic, dependency-free randomness for reproducible failures.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Import must return (Ok or Err) without panicking; the folder makes external data
/// references resolvable so that path is exercised too.
fn must_not_panic(data: Vec<u8>, what: &str) {
    let dir = fixture("");
    let r = std::panic::catch_unwind(|| import_bytes(Bytes::from(data), Some(&dir)).map(|_| ()));
    assert!(r.is_ok(), "import panicked on {what}");
}

#[test]
fn random_bytes_are_refused() {
    let mut rng = Rng(0x5eed);
    for i in 0..2000 {
        let len = rng.below(256);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Random bytes that happen to decode are fine; panics are not.
        must_not_panic(data, &format!("random input #{i}"));
    }
    assert!(
        import_bytes(Bytes::new(), None).is_err(),
        "an empty file has no graph"
    );
}

fn models() -> Vec<(String, Vec<u8>)> {
    [
        "storage.onnx",
        "external.onnx",
        "canonical.onnx",
        "unsupported.onnx",
    ]
    .iter()
    .map(|n| (n.to_string(), std::fs::read(fixture(n)).unwrap()))
    .chain(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/models/tiny_bert.onnx"
        ))
        .ok()
        .map(|d| ("tiny_bert.onnx".to_string(), d)),
    )
    .collect()
}

#[test]
fn every_truncation_is_handled() {
    for (name, data) in models() {
        // Every prefix of the small fixtures; a stride through the larger model.
        let step = (data.len() / 2000).max(1);
        for cut in (0..data.len()).step_by(step) {
            must_not_panic(data[..cut].to_vec(), &format!("{name} cut at {cut}"));
        }
    }
}

#[test]
fn corrupted_models_are_handled() {
    let mut rng = Rng(0xc0ffee);
    for (name, data) in models() {
        for i in 0..1500 {
            let mut d = data.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(d.len());
                d[at] = match rng.below(3) {
                    0 => rng.next() as u8,
                    1 => d[at] ^ (1 << rng.below(8)),
                    _ => 0xff,
                };
            }
            must_not_panic(d, &format!("{name} corruption #{i}"));
        }
    }
}
