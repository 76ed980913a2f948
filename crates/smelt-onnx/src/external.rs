//! Tensor data stored outside the model (`data_location = EXTERNAL`).
//!
//! The `location` key of an external tensor names a file relative to the model's folder.
//! A model is untrusted, so the path is confined to that folder: absolute paths and `..`
//! components are refused outright, and the resolved path (symlinks followed) must still
//! lie inside the canonical model folder, so a link pointing elsewhere is refused too.
//! Each file is mapped once and tensors are slices of the mapping (no copy); `offset` and
//! `length` are checked against the file's size before slicing.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::error::{OnnxError, OnnxResult};
use crate::mapping::map_file;
use crate::proto::StringStringEntryProto;

/// Resolves and caches external data files for one import.
pub(crate) struct ExternalFiles {
    /// The model's folder as given; canonicalized on first use so a model without
    /// external data never touches the file system.
    base: Option<PathBuf>,
    canonical_base: Option<PathBuf>,
    files: HashMap<PathBuf, Bytes>,
}

/// The parsed `external_data` keys of one tensor.
struct Location<'a> {
    location: &'a str,
    offset: u64,
    length: Option<u64>,
}

impl ExternalFiles {
    /// External data is resolved relative to `base` (the model's folder); with `None`
    /// every external tensor is refused.
    pub(crate) fn new(base: Option<&Path>) -> ExternalFiles {
        ExternalFiles {
            base: base.map(Path::to_path_buf),
            canonical_base: None,
            files: HashMap::new(),
        }
    }

    /// The bytes of an external tensor named `tensor`, described by `entries`.
    pub(crate) fn load(
        &mut self,
        tensor: &str,
        entries: &[StringStringEntryProto],
    ) -> OnnxResult<Bytes> {
        let err = |msg: String| OnnxError::ExternalData {
            tensor: tensor.to_string(),
            msg,
        };
        let loc = parse_entries(entries).map_err(err)?;
        let path = self.resolve(loc.location).map_err(err)?;
        let data = match self.files.get(&path) {
            Some(d) => d.clone(),
            None => {
                let d = map_file(&path)?;
                self.files.insert(path.clone(), d.clone());
                d
            }
        };
        let size = data.len() as u64;
        let end = match loc.length {
            Some(len) => loc.offset.checked_add(len),
            None => Some(size),
        };
        match end {
            Some(end) if loc.offset <= end && end <= size => {
                // Both bounds are <= size, which came from a usize, so they fit.
                let (start, end) = (usize::try_from(loc.offset), usize::try_from(end));
                match (start, end) {
                    (Ok(s), Ok(e)) => Ok(data.slice(s..e)),
                    _ => Err(err(format!(
                        "range does not fit in memory in `{}`",
                        loc.location
                    ))),
                }
            }
            _ => Err(err(format!(
                "offset {} length {} runs past the end of `{}` ({size} bytes)",
                loc.offset,
                loc.length
                    .map_or_else(|| "(rest)".to_string(), |l| l.to_string()),
                loc.location
            ))),
        }
    }

    /// Resolve `location` to a canonical path inside the model folder, or say why not.
    fn resolve(&mut self, location: &str) -> Result<PathBuf, String> {
        let rel = Path::new(location);
        if location.is_empty() {
            return Err("empty `location`".into());
        }
        if location.contains('\0') {
            return Err("`location` contains a NUL byte".into());
        }
        let escapes =
            |why: &str| format!("`location` `{location}` escapes the model folder: {why}");
        for c in rel.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => return Err(escapes("it must not contain `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(escapes("it must be a relative path"))
                }
            }
        }
        let base = match (&self.canonical_base, &self.base) {
            (Some(b), _) => b.clone(),
            (None, Some(b)) => {
                let c = b.canonicalize().map_err(|e| {
                    format!("cannot resolve the model folder `{}`: {e}", b.display())
                })?;
                self.canonical_base = Some(c.clone());
                c
            }
            (None, None) => {
                return Err(format!(
                    "refers to `{location}` but the model was loaded from memory without a folder"
                ))
            }
        };
        let full = base.join(rel);
        // Canonicalizing follows every symlink, so the prefix check below sees where the
        // data really lives.
        let canon = full
            .canonicalize()
            .map_err(|e| format!("cannot open `{location}`: {e}"))?;
        if !canon.starts_with(&base) {
            return Err(escapes(
                "it resolves outside the model folder (through a symbolic link)",
            ));
        }
        if !canon.is_file() {
            return Err(format!("`{location}` is not a regular file"));
        }
        Ok(canon)
    }
}

fn parse_entries(entries: &[StringStringEntryProto]) -> Result<Location<'_>, String> {
    let mut location = None;
    let mut offset = 0;
    let mut length = None;
    for e in entries {
        let key = e.key.as_deref().unwrap_or_default();
        let value = e.value.as_deref().unwrap_or_default();
        let number = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{key}` is not a byte count: `{value}`"))
        };
        match key {
            "location" => location = Some(value),
            "offset" => offset = number()?,
            "length" => length = Some(number()?),
            // `checksum` and future keys carry nothing needed to read the data.
            _ => {}
        }
    }
    let location = location.ok_or("no `location` key")?;
    Ok(Location {
        location,
        offset,
        length,
    })
}
