//! Static memory planning: every temporary buffer gets an offset in one arena, and
//! buffers whose lifetimes do not overlap share bytes.
//!
//! Lifetimes are measured in kernel positions: a temporary is live from the kernel
//! that writes it to the last kernel that reads it (directly or through a view).
//! Placement is greedy, largest buffer first, each at the lowest aligned offset that
//! does not collide with a placed buffer of overlapping lifetime: simple, and within a
//! few percent of optimal on transformer graphs, whose temporaries come in a handful of
//! sizes.

use std::collections::HashMap;

use crate::error::LowerError;
use crate::ir::{BufferId, BufferKind, KernelProgram};

/// Every arena offset is a multiple of this (a cache line, and the widest vector).
pub const ALIGN: u64 = 64;

/// Where each temporary lives for one set of dim values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Arena offset of each buffer that lives in the arena, indexed by buffer id
    /// (`None` for inputs, outputs, constants and views).
    pub offsets: Vec<Option<u64>>,
    /// Byte size of every buffer (views included), indexed by buffer id.
    pub sizes: Vec<u64>,
    /// Bytes the arena needs: the peak of simultaneously live temporaries.
    pub arena_bytes: u64,
    /// Bytes all temporaries would take without sharing (for reports).
    pub unshared_bytes: u64,
}

/// The byte size of every buffer for the given dim values.
pub fn buffer_sizes(
    program: &KernelProgram,
    dim: &dyn Fn(&str) -> Option<u64>,
) -> Result<Vec<u64>, LowerError> {
    program
        .buffers
        .iter()
        .map(|b| {
            let mut elems: u64 = 1;
            for s in &b.shape {
                let n = s.eval(dim).map_err(|d| LowerError::MissingDim {
                    dim: d,
                    buffer: b.name.clone(),
                })?;
                elems = elems.checked_mul(n).ok_or_else(|| {
                    LowerError::Input(format!("buffer `{}` is too large", b.name))
                })?;
            }
            let bits = b.dtype.bits().max(8) as u64;
            elems
                .checked_mul(bits)
                .map(|b| b.div_ceil(8))
                .ok_or_else(|| LowerError::Input(format!("buffer `{}` is too large", b.name)))
        })
        .collect()
}

/// Plan the arena for the given dim values.
pub fn plan_memory(
    program: &KernelProgram,
    dim: &dyn Fn(&str) -> Option<u64>,
) -> Result<MemoryPlan, LowerError> {
    let sizes = buffer_sizes(program, dim)?;
    let n = program.buffers.len();
    // Live range per root buffer, in kernel positions.
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (pos, k) in program.kernels.iter().enumerate() {
        for b in k.writes().into_iter().chain(k.reads()) {
            let r = program.root(b).0 as usize;
            first[r] = first[r].min(pos);
            last[r] = last[r].max(pos);
        }
    }
    let mut temps: Vec<usize> = (0..n)
        .filter(|&i| matches!(program.buffers[i].kind, BufferKind::Temp) && first[i] != usize::MAX)
        .collect();
    temps.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut offsets = vec![None; n];
    let mut placed: Vec<(u64, u64, usize, usize)> = vec![]; // (offset, end, first, last)
    let mut arena_bytes = 0u64;
    let mut unshared_bytes = 0u64;
    for i in temps {
        let size = sizes[i].div_ceil(ALIGN) * ALIGN;
        unshared_bytes += size;
        let mut clashes: Vec<(u64, u64)> = placed
            .iter()
            .filter(|p| p.2 <= last[i] && first[i] <= p.3)
            .map(|p| (p.0, p.1))
            .collect();
        clashes.sort();
        let mut offset = 0u64;
        for (start, end) in clashes {
            if offset + size <= start {
                break;
            }
            offset = offset.max(end);
        }
        placed.push((offset, offset + size, first[i], last[i]));
        offsets[i] = Some(offset);
        arena_bytes = arena_bytes.max(offset + size);
    }
    Ok(MemoryPlan {
        offsets,
        sizes,
        arena_bytes,
        unshared_bytes,
    })
}

impl MemoryPlan {
    /// The arena offset of `id`'s storage (following views), if it lives in the arena.
    pub fn offset_of(&self, program: &KernelProgram, id: BufferId) -> Option<u64> {
        self.offsets[program.root(id).0 as usize]
    }

    /// Check that no two temporaries that are live at the same time overlap.
    pub fn check(&self, program: &KernelProgram) -> Result<(), String> {
        let live: HashMap<usize, (usize, usize)> = {
            let mut m: HashMap<usize, (usize, usize)> = HashMap::new();
            for (pos, k) in program.kernels.iter().enumerate() {
                for b in k.writes().into_iter().chain(k.reads()) {
                    let r = program.root(b).0 as usize;
                    let e = m.entry(r).or_insert((pos, pos));
                    e.0 = e.0.min(pos);
                    e.1 = e.1.max(pos);
                }
            }
            m
        };
        let placed: Vec<(usize, u64)> = self
            .offsets
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.map(|o| (i, o)))
            .collect();
        for (x, &(a, oa)) in placed.iter().enumerate() {
            for &(b, ob) in &placed[x + 1..] {
                let (la, lb) = (live[&a], live[&b]);
                let time = la.0 <= lb.1 && lb.0 <= la.1;
                let space = oa < ob + self.sizes[b] && ob < oa + self.sizes[a];
                if time && space {
                    return Err(format!(
                        "buffers b{a} and b{b} are live together and overlap in the arena"
                    ));
                }
            }
        }
        Ok(())
    }
}
