//! Placing large tensors in a side file (`data_location = EXTERNAL`).
//!
//! A protobuf message cannot exceed 2 GiB, and large weights inline make a model file
//! slow to parse for tools that copy fields. Tensors whose `raw_data` is at least the
//! threshold go to one data file next to the model; if the model would still be too big
//! for a protobuf, the largest remaining tensors follow until it fits. Each moved tensor
//! records `location` (the data file's name, relative to the model's folder, which is
//! where the importer resolves it), `offset` and `length`. Tensors at least as large as
//! the alignment start at a multiple of it, so a loader can map them page-aligned.

use std::io::{self, Write};

use crate::proto::tensor_proto::DataLocation;
use crate::proto::{GraphProto, StringStringEntryProto, TensorProto};

/// The largest protobuf message that can be written (and read back): 2 GiB - 1.
pub const PROTOBUF_LIMIT: u64 = (1 << 31) - 1;

/// Headroom kept below [`PROTOBUF_LIMIT`] when choosing what to move, for the
/// `external_data` entries the moved tensors gain.
const HEADROOM: u64 = 16 << 20;

/// Where an exported tensor lives in the graph proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// `graph.initializer[i]`.
    Initializer(usize),
    /// The `value` attribute of the `Constant` node `graph.node[i]`.
    ConstantNode(usize),
}

/// The tensor at `slot`.
pub(super) fn tensor_mut(g: &mut GraphProto, slot: Slot) -> Option<&mut TensorProto> {
    match slot {
        Slot::Initializer(i) => g.initializer.get_mut(i),
        Slot::ConstantNode(i) => g.node.get_mut(i)?.attribute.first_mut()?.t.as_mut(),
    }
}

fn raw_len(g: &mut GraphProto, slot: Slot) -> u64 {
    tensor_mut(g, slot)
        .and_then(|t| t.raw_data.as_ref())
        .map_or(0, |r| r.len() as u64)
}

/// The tensors to move to the data file, in `slots` order: every one whose raw data is
/// at least `threshold` bytes (none with `None`; empty tensors never), then the largest
/// others while the model (`encoded_len` bytes with everything inline) is too big for a
/// protobuf.
pub(super) fn choose(
    g: &mut GraphProto,
    slots: &[Slot],
    threshold: Option<u64>,
    encoded_len: u64,
) -> Vec<Slot> {
    let mut sized: Vec<(usize, u64)> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| (i, raw_len(g, *s)))
        .filter(|(_, len)| *len > 0)
        .collect();
    let mut moved = vec![false; slots.len()];
    let mut inline = encoded_len;
    for &(i, len) in &sized {
        if threshold.is_some_and(|t| len >= t) {
            if let Some(m) = moved.get_mut(i) {
                *m = true;
                inline = inline.saturating_sub(len);
            }
        }
    }
    let target = PROTOBUF_LIMIT - HEADROOM;
    if inline > target {
        sized.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for &(i, len) in &sized {
            if inline <= target {
                break;
            }
            if let Some(m) = moved.get_mut(i).filter(|m| !**m) {
                *m = true;
                inline = inline.saturating_sub(len);
            }
        }
    }
    slots
        .iter()
        .zip(moved)
        .filter(|(_, m)| *m)
        .map(|(s, _)| *s)
        .collect()
}

/// Move the `chosen` tensors' data into `out` (the data file, named `location` relative
/// to the model), rewriting their protos to point at it. Returns the bytes written.
pub(super) fn write_external(
    g: &mut GraphProto,
    chosen: &[Slot],
    location: &str,
    alignment: u64,
    out: &mut impl Write,
) -> io::Result<u64> {
    let mut offset: u64 = 0;
    for &slot in chosen {
        let Some(t) = tensor_mut(g, slot) else {
            continue;
        };
        let Some(data) = t.raw_data.take() else {
            continue;
        };
        let len = data.len() as u64;
        if alignment > 1 && len >= alignment {
            let pad = (alignment - offset % alignment) % alignment;
            write_zeros(out, pad)?;
            offset += pad;
        }
        out.write_all(&data)?;
        t.data_location = Some(DataLocation::External as i32);
        t.external_data = vec![
            entry("location", location),
            entry("offset", &offset.to_string()),
            entry("length", &len.to_string()),
        ];
        offset += len;
    }
    Ok(offset)
}

fn write_zeros(out: &mut impl Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64) as usize;
        out.write_all(ZEROS.get(..k).unwrap_or(&ZEROS))?;
        n = n.saturating_sub(k as u64);
    }
    Ok(())
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(key.to_string()),
        value: Some(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn init(len: usize) -> TensorProto {
        TensorProto {
            raw_data: Some(Bytes::from(vec![7u8; len])),
            ..TensorProto::default()
        }
    }

    #[test]
    fn threshold_and_alignment() {
        let mut g = GraphProto {
            initializer: vec![init(10), init(5000), init(0), init(3)],
            ..GraphProto::default()
        };
        let slots: Vec<Slot> = (0..4).map(Slot::Initializer).collect();
        let chosen = choose(&mut g, &slots, Some(3), 6000);
        assert_eq!(
            chosen,
            vec![
                Slot::Initializer(0),
                Slot::Initializer(1),
                Slot::Initializer(3)
            ]
        );
        let mut out = vec![];
        let n = write_external(&mut g, &chosen, "m.data", 4096, &mut out).unwrap();
        // 10 bytes, padding to 4096, 5000 bytes, then 3 unaligned bytes.
        assert_eq!(n, 4096 + 5000 + 3);
        assert_eq!(out.len() as u64, n);
        let offsets: Vec<String> = g
            .initializer
            .iter()
            .filter_map(|t| t.external_data.get(1).and_then(|e| e.value.clone()))
            .collect();
        assert_eq!(offsets, ["0", "4096", "9096"]);
        assert!(g.initializer[2].external_data.is_empty());
        assert_eq!(
            g.initializer[1].data_location,
            Some(DataLocation::External as i32)
        );
    }

    #[test]
    fn too_big_for_protobuf_moves_the_largest() {
        let mut g = GraphProto {
            initializer: vec![init(10), init(20)],
            ..GraphProto::default()
        };
        let slots = [Slot::Initializer(0), Slot::Initializer(1)];
        assert!(choose(&mut g, &slots, None, 100).is_empty());
        // Pretend the rest of the model already fills the protobuf: the 20-byte tensor
        // moves first, and that is enough.
        let chosen = choose(&mut g, &slots, None, PROTOBUF_LIMIT - HEADROOM + 15);
        assert_eq!(chosen, vec![Slot::Initializer(1)]);
    }
}
