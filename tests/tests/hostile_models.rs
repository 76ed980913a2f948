//! The crafted model files of `tests/hostile/` (written by `tests/hostile/make.py`) are
//! refused cleanly: each import fails, without a panic, with the message `expected.txt`
//! lists for the file, naming the file, tensor, node or value concerned.
//!
//! Models are imported from a file (so decode errors name it) and from memory, under
//! tight [`ImportLimits`] so the node-count and nesting bombs stay small on disk.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use smelt::onnx::{
    import_model_bytes_with_limits, import_model_file_with_limits, ImportLimits, ImportOptions,
};

/// The limits the entries of `expected.txt` assume.
fn limits() -> ImportLimits {
    ImportLimits {
        max_memory_bytes: 1 << 30,
        max_nodes: 50,
        max_subgraph_depth: 4,
    }
}

fn hostile_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hostile")
}

/// One line of `expected.txt`.
struct Expected {
    file: String,
    message: String,
    culprit: String,
}

fn expected() -> Vec<Expected> {
    let path = hostile_dir().join("expected.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let parts: Vec<&str> = l.split(" | ").map(str::trim).collect();
            let [file, message, culprit] = parts.as_slice() else {
                panic!("expected.txt: `{l}` is not `FILE | MESSAGE | CULPRIT`");
            };
            Expected {
                file: file.to_string(),
                message: message.to_string(),
                culprit: culprit.to_string(),
            }
        })
        .collect()
}

/// A temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "smelt-hostile-models-{case}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where to import `file` from: the committed file itself, or for the symlink case a
/// copy in a temporary folder next to `escape.bin`, a link to a file outside that folder
/// (symlinks are not committed).
fn model_path(file: &str, temp: &mut Option<TempDir>) -> PathBuf {
    let committed = hostile_dir().join(file);
    if file != "symlink_escape.onnx" {
        return committed;
    }
    let dir = TempDir::new("symlink");
    let inner = dir.0.join("model");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::write(dir.0.join("outside.bin"), [0u8; 16]).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.0.join("outside.bin"), inner.join("escape.bin")).unwrap();
    let path = inner.join(file);
    std::fs::copy(&committed, &path).unwrap();
    *temp = Some(dir);
    path
}

/// Run `f`, turning a panic into a test failure naming `file`.
fn no_panic<T>(file: &str, how: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| panic!("{file}: importing {how} panicked instead of failing cleanly"))
}

#[test]
fn every_hostile_model_is_refused_with_its_message() {
    let cases = expected();
    assert!(
        cases.len() >= 15,
        "expected.txt lists {} files",
        cases.len()
    );
    let mut failures = vec![];
    for case in &cases {
        if cfg!(not(unix)) && case.file == "symlink_escape.onnx" {
            continue;
        }
        let mut temp = None;
        let path = model_path(&case.file, &mut temp);
        let options = ImportOptions::default();
        let from_file = no_panic(&case.file, "from its file", || {
            import_model_file_with_limits(&path, &options, &limits())
        });
        let msg = match from_file {
            Ok(_) => {
                failures.push(format!("{}: imported, but must be refused", case.file));
                continue;
            }
            Err(e) => e.to_string(),
        };
        for (what, want) in [("message", &case.message), ("culprit", &case.culprit)] {
            if !msg.contains(want.as_str()) {
                failures.push(format!(
                    "{}: the error does not contain the {what} `{want}`:\n    {msg}",
                    case.file
                ));
            }
        }
        // The same bytes from memory (external data resolved in the same folder) are
        // refused too, for the same reason.
        let bytes = std::fs::read(&path).unwrap();
        let dir = path.parent().map(Path::to_path_buf);
        let from_memory = no_panic(&case.file, "from memory", || {
            import_model_bytes_with_limits(bytes.into(), dir.as_deref(), &options, &limits())
        });
        match from_memory {
            Ok(_) => failures.push(format!("{}: imported from memory", case.file)),
            Err(e) if !e.to_string().contains(case.message.as_str()) => failures.push(format!(
                "{}: from memory, the error does not contain `{}`:\n    {e}",
                case.file, case.message
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn expected_txt_lists_every_model_and_each_is_small() {
    let listed: Vec<String> = expected().into_iter().map(|e| e.file).collect();
    let mut on_disk = vec![];
    for entry in std::fs::read_dir(hostile_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".onnx") {
            let size = entry.metadata().unwrap().len();
            assert!(
                size <= 16 * 1024,
                "{name} is {size} bytes; keep hostile models small"
            );
            on_disk.push(name);
        }
    }
    for name in &on_disk {
        assert!(
            listed.contains(name),
            "{name} is not listed in expected.txt"
        );
    }
    for name in &listed {
        assert!(
            on_disk.contains(name),
            "expected.txt lists {name}, which does not exist"
        );
    }
}

#[test]
fn the_bombs_are_refused_under_the_default_limits_too() {
    // Without the test's tight limits the node-count and nesting bombs still fail
    // cleanly (the chain of Relus imports; the nested Ifs are refused one way or another).
    let options = ImportOptions::default();
    for file in [
        "depth_bomb.onnx",
        "depth_bomb_decoder.onnx",
        "size_bomb.onnx",
    ] {
        let path = hostile_dir().join(file);
        let r = no_panic(file, "under the default limits", || {
            import_model_file_with_limits(&path, &options, &ImportLimits::default())
        });
        assert!(r.is_err(), "{file} imported under the default limits");
    }
    let path = hostile_dir().join("too_many_nodes.onnx");
    let r = no_panic("too_many_nodes.onnx", "under the default limits", || {
        import_model_file_with_limits(&path, &options, &ImportLimits::default())
    });
    assert!(
        r.is_ok(),
        "a 200-node chain is fine by default: {:?}",
        r.err()
    );
}
