//! Ahead-of-time artifacts: a shared library or a relocatable object with the C ABI
//! of [`smelt_runtime::aot`], built with the system C compiler (`$CC`, else `cc`).
//!
//! The kernels come from the backend as an object file; the runtime's C source and
//! tables are compiled beside them; the weights are embedded with the assembler's
//! `.incbin`, so the artifact is self-contained. Shapes are fixed at compile time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::compile::Compiled;
use crate::error::{Error, Result};

/// What an AOT build produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// A shared library (`.so`).
    SharedLibrary,
    /// A relocatable object file (`.o`) to link into a program.
    Object,
}

impl ArtifactKind {
    /// The kind an output path asks for by its extension (`.o` or `.so`).
    pub fn from_path(path: &Path) -> Option<ArtifactKind> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("so") => Some(ArtifactKind::SharedLibrary),
            Some("o") => Some(ArtifactKind::Object),
            _ => None,
        }
    }
}

/// What an AOT build did.
#[derive(Debug, Clone)]
pub struct AotReport {
    /// The artifact.
    pub artifact: PathBuf,
    /// The C header written beside it.
    pub header: PathBuf,
    /// Kernels compiled.
    pub kernels: usize,
    /// Peak arena bytes.
    pub arena_bytes: u64,
    /// Bytes of embedded weights.
    pub weights_bytes: usize,
    /// Specialisation, lowering and code generation, in ms.
    pub codegen_ms: f64,
    /// The C compiler and linker, in ms.
    pub cc_ms: f64,
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| io_err(path, e))
}

/// Run the C compiler with `args`, reporting its output on failure.
fn cc(args: &[&str], cwd: &Path) -> Result<()> {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&compiler)
        .args(args)
        .current_dir(cwd)
        .output()
        .map_err(|e| {
            Error::Usage(format!(
                "running the C compiler `{compiler}` (set $CC to choose another): {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "`{compiler} {}` failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// A scratch folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Compiled {
    /// Build an AOT artifact for input `shapes` at `out` (`.so` or `.o`, by `kind`);
    /// the header goes to `out` with the extension `.h`.
    pub fn compile_aot(
        &self,
        shapes: &[Vec<usize>],
        out: &Path,
        kind: ArtifactKind,
    ) -> Result<AotReport> {
        let t0 = Instant::now();
        let program = self.program(shapes)?;
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let dims = smelt_lower::eval::bind_dims(&program, &refs)?;
        let object = self.object(&program, "smelt")?;
        let sources = smelt_runtime::aot::generate(&program, &dims, "smelt")?;
        let codegen_ms = t0.elapsed().as_secs_f64() * 1e3;

        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("smelt-aot-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let scratch = Scratch(dir);
        let dir = &scratch.0;
        write(&dir.join("kernels.o"), &object)?;
        write(&dir.join("model.c"), sources.source.as_bytes())?;
        let weights = dir.join("weights.bin");
        write(&weights, &sources.weights)?;
        let weights_str = weights.to_str().ok_or_else(|| {
            Error::Usage(format!("temporary path {} is not UTF-8", weights.display()))
        })?;
        let asm = format!(
            "    .section .rodata.smelt_weights,\"a\"\n    .balign 64\n    .globl smelt_weights\n    .hidden smelt_weights\nsmelt_weights:\n    .incbin \"{}\"\n    .byte 0\n    .section .note.GNU-stack,\"\",@progbits\n",
            weights_str.replace('\\', "\\\\").replace('"', "\\\"")
        );
        write(&dir.join("weights.S"), asm.as_bytes())?;

        let out_abs = if out.is_absolute() {
            out.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| io_err(out, e))?
                .join(out)
        };
        let out_str = out_abs
            .to_str()
            .ok_or_else(|| Error::Usage(format!("output path {} is not UTF-8", out.display())))?;
        let t1 = Instant::now();
        match kind {
            ArtifactKind::SharedLibrary => cc(
                &[
                    "-O2",
                    "-fPIC",
                    "-shared",
                    "-o",
                    out_str,
                    "model.c",
                    "weights.S",
                    "kernels.o",
                    "-lpthread",
                    "-lm",
                ],
                dir,
            )?,
            ArtifactKind::Object => {
                cc(&["-O2", "-fPIC", "-c", "model.c", "-o", "model_c.o"], dir)?;
                cc(&["-c", "weights.S", "-o", "weights.o"], dir)?;
                cc(
                    &[
                        "-r",
                        "-nostdlib",
                        "-o",
                        out_str,
                        "model_c.o",
                        "weights.o",
                        "kernels.o",
                    ],
                    dir,
                )?;
            }
        }
        let cc_ms = t1.elapsed().as_secs_f64() * 1e3;
        let header = out_abs.with_extension("h");
        write(&header, sources.header.as_bytes())?;
        Ok(AotReport {
            artifact: out_abs,
            header,
            kernels: program.kernels.len(),
            arena_bytes: sources.arena_bytes,
            weights_bytes: sources.weights.len(),
            codegen_ms,
            cc_ms,
        })
    }
}

/// PTX for an NVIDIA GPU and its launch manifest.
#[derive(Debug, Clone)]
pub struct PtxArtifact {
    /// The PTX text: one `.entry smelt_k{i}` per kernel.
    pub ptx: String,
    /// JSON: kernel names, thread counts, block and grid sizes, buffer layout.
    pub manifest: String,
    /// Kernels in the program.
    pub kernels: usize,
}

impl Compiled {
    /// PTX for `gpu` (`sm_80`, `sm_90`, …) of the program for input `shapes`, with
    /// thread blocks of `block` threads in the manifest. Needs the `llvm` feature.
    #[cfg(feature = "llvm")]
    pub fn compile_ptx(&self, shapes: &[Vec<usize>], gpu: &str, block: u32) -> Result<PtxArtifact> {
        let program = self.program(shapes)?;
        let ptx = smelt_codegen_llvm::compile_ptx(&program, gpu)?;
        Ok(PtxArtifact {
            manifest: smelt_codegen_llvm::launch_manifest(&program, block),
            kernels: program.kernels.len(),
            ptx,
        })
    }

    /// Without the `llvm` feature there is no PTX backend.
    #[cfg(not(feature = "llvm"))]
    pub fn compile_ptx(
        &self,
        _shapes: &[Vec<usize>],
        _gpu: &str,
        _block: u32,
    ) -> Result<PtxArtifact> {
        Err(Error::Usage(
            "PTX needs the LLVM backend: build smelt with the `llvm` feature".into(),
        ))
    }
}
