//! Memory-mapping model and external-data files into [`Bytes`].
//!
//! Weights are the bulk of a model; mapping the file and handing out `Bytes` slices of
//! the mapping means an initializer is never copied on import, and pages are only
//! read when something touches them.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

use crate::error::{OnnxError, OnnxResult};

/// Map `path` read-only and wrap the mapping in a [`Bytes`] that keeps it alive.
pub(crate) fn map_file(path: &Path) -> OnnxResult<Bytes> {
    let io = |source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        // Nothing to map; an empty buffer decodes (or fails to) like any other.
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only and private to this process. The one hazard of
    // file mappings is another process truncating or rewriting the file while it is
    // mapped, which would change (or fault on) data we already validated. Model files
    // are treated as immutable while a model is loaded, the same contract every
    // mmap-based model loader makes; the alternative, reading whole multi-GB weight
    // files into memory, defeats zero-copy import.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    Ok(Bytes::from_owner(map))
}
