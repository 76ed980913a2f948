//! Ahead-of-time artifacts: the C ABI, its header, and the C source that runs a
//! program's kernels from a shared library or object file.
//!
//! [`generate`] turns a program whose dims are all bound into three pieces: the header
//! users include (`smelt_model_new/run/free`, tensor descriptors), a C source file
//! (tables of buffers, kernels, inputs and outputs, followed by the fixed runtime in
//! `c/smelt_rt.c`: arena, pthread pool, argument checks), and the weights blob the
//! source refers to as `smelt_weights` (constants back to back, 64-byte aligned). A
//! builder compiles the source with the system C compiler next to the kernels' object
//! file and the weights (embedded with `.incbin`).

use std::collections::HashMap;
use std::fmt::Write as _;

use smelt_ir::DType;
use smelt_lower::{plan_memory, BufferKind, KernelProgram, LowerError};

/// The fixed part of the C runtime, appended to the generated tables.
pub const C_RUNTIME: &str = include_str!("c/smelt_rt.c");

/// Everything needed to build an AOT artifact for one program.
#[derive(Debug, Clone)]
pub struct AotSources {
    /// The public header (`model.h`).
    pub header: String,
    /// The C source: tables and runtime.
    pub source: String,
    /// The weights, laid out as the tables expect.
    pub weights: Vec<u8>,
    /// Peak arena bytes.
    pub arena_bytes: u64,
}

/// ONNX `TensorProto.DataType` numbering, used by the C ABI's `dtype` fields.
pub fn onnx_dtype_code(t: DType) -> Option<i32> {
    Some(match t {
        DType::F32 => 1,
        DType::U8 => 2,
        DType::I8 => 3,
        DType::U16 => 4,
        DType::I16 => 5,
        DType::I32 => 6,
        DType::I64 => 7,
        DType::Bool => 9,
        DType::F16 => 10,
        DType::F64 => 11,
        DType::U32 => 12,
        DType::U64 => 13,
        DType::BF16 => 16,
        _ => return None,
    })
}

/// The header of the C ABI. The declarations are the same for every model; the
/// comment lists this model's inputs and outputs.
pub fn header(program: &KernelProgram, dims: &HashMap<String, u64>) -> String {
    let mut io = String::new();
    for (what, list) in [("input", &program.inputs), ("output", &program.outputs)] {
        for (i, &b) in list.iter().enumerate() {
            let buf = program.buffer(b);
            let shape: Vec<String> = buf
                .shape
                .iter()
                .map(|s| {
                    s.eval(|d| dims.get(d).copied())
                        .map_or_else(|_| s.to_string(), |v| v.to_string())
                })
                .collect();
            let _ = writeln!(
                io,
                " *   {what} {i}: {} {}[{}]",
                buf.name,
                buf.dtype,
                shape.join(", ")
            );
        }
    }
    format!(
        r#"/* smelt: C interface of the ahead-of-time compiled model `{name}`.
 *
 * Shapes are fixed at compile time:
{io} *
 * Usage: m = smelt_model_new(threads); smelt_model_run(m, inputs, n, outputs, n);
 * smelt_model_free(m). The caller owns every tensor's memory; outputs must have
 * exactly the bytes smelt_model_io reports. Functions returning int32_t return 0 on
 * success and -1 on error (smelt_model_last_error says why). A model may be run
 * from one thread at a time; create one per thread for concurrent runs. */
#ifndef SMELT_MODEL_H
#define SMELT_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum smelt_dtype {{
    SMELT_FLOAT = 1, SMELT_UINT8 = 2, SMELT_INT8 = 3, SMELT_UINT16 = 4, SMELT_INT16 = 5,
    SMELT_INT32 = 6, SMELT_INT64 = 7, SMELT_BOOL = 9, SMELT_FLOAT16 = 10, SMELT_DOUBLE = 11,
    SMELT_UINT32 = 12, SMELT_UINT64 = 13, SMELT_BFLOAT16 = 16
}} smelt_dtype;

/* A dense row-major tensor owned by the caller. */
typedef struct smelt_tensor {{
    int32_t dtype;        /* a smelt_dtype */
    int32_t rank;
    const int64_t *shape; /* rank entries */
    void *data;
    uint64_t bytes;       /* size of data */
}} smelt_tensor;

/* What an input or output must look like. */
typedef struct smelt_io_info {{
    const char *name;
    int32_t dtype;
    int32_t rank;
    const int64_t *shape;
    uint64_t bytes;
}} smelt_io_info;

typedef struct smelt_model smelt_model;

/* A model instance with `threads` worker threads (including the caller's); NULL when
 * out of memory. */
smelt_model *smelt_model_new(int32_t threads);
/* Run on inputs and outputs in the model's order. */
int32_t smelt_model_run(smelt_model *model, const smelt_tensor *inputs, int32_t n_inputs,
                        smelt_tensor *outputs, int32_t n_outputs);
/* Why the last call on `model` failed (empty when it did not). */
const char *smelt_model_last_error(const smelt_model *model);
void smelt_model_free(smelt_model *model);
int32_t smelt_model_num_inputs(void);
int32_t smelt_model_num_outputs(void);
/* Describe input (`output` = 0) or output (`output` = 1) number `index`. */
int32_t smelt_model_io(int32_t output, int32_t index, smelt_io_info *info);

#ifdef __cplusplus
}}
#endif

#endif /* SMELT_MODEL_H */
"#,
        name = program.name
    )
}

/// Generate the header, source and weights for `program` with every named dim bound
/// in `dims`; kernels are the symbols `{kernel_prefix}_k{i}`.
pub fn generate(
    program: &KernelProgram,
    dims: &HashMap<String, u64>,
    kernel_prefix: &str,
) -> Result<AotSources, LowerError> {
    let dim = |d: &str| dims.get(d).copied();
    let plan = plan_memory(program, &dim)?;
    let header = header(program, dims);
    let mut weights: Vec<u8> = vec![];
    let mut const_offsets: HashMap<u32, u64> = HashMap::new();
    for (i, buf) in program.buffers.iter().enumerate() {
        if let BufferKind::Constant { data, .. } = &buf.kind {
            let t = data
                .as_plain()
                .ok_or_else(|| LowerError::Input(format!("constant `{}` is encoded", buf.name)))?;
            while !weights.len().is_multiple_of(64) {
                weights.push(0);
            }
            const_offsets.insert(i as u32, weights.len() as u64);
            weights.extend_from_slice(t.bytes());
        }
    }
    let size = |s: &smelt_lower::Size| -> Result<u64, LowerError> {
        s.eval(dim).map_err(|d| LowerError::MissingDim {
            dim: d,
            buffer: "(kernel loop)".into(),
        })
    };
    let mut c = String::new();
    c.push_str("/* Generated by smelt: tables of the compiled model, then the runtime. */\n");
    c.push_str(&header);
    let _ = write!(
        c,
        "\ntypedef void (*smelt_kernel_fn)(uint8_t *const *, const int64_t *, int64_t, int64_t);\n\
         #define SMELT_NUM_BUFFERS {}\n#define SMELT_NUM_KERNELS {}\n#define SMELT_NUM_INPUTS {}\n\
         #define SMELT_NUM_OUTPUTS {}\n#define SMELT_ARENA_BYTES {}ULL\n#define SMELT_MAX_THREADS 256\n\
         #define SMELT_PARALLEL_MIN_POINTS {}ULL\n\
         enum {{ SMELT_BUF_INPUT, SMELT_BUF_OUTPUT, SMELT_BUF_CONST, SMELT_BUF_TEMP, SMELT_BUF_VIEW }};\n\
         struct smelt_buffer_desc {{ uint8_t kind; int32_t index; uint64_t offset; }};\n\
         struct smelt_kernel_desc {{ smelt_kernel_fn fn; int64_t extent; int64_t align; uint64_t points; }};\n\
         struct smelt_io_desc {{ const char *name; int32_t dtype; int32_t rank; const int64_t *shape; uint64_t bytes; }};\n\
         extern const uint8_t smelt_weights[];\n",
        program.buffers.len(),
        program.kernels.len(),
        program.inputs.len(),
        program.outputs.len(),
        plan.arena_bytes,
        crate::PARALLEL_MIN_POINTS,
    );
    for i in 0..program.kernels.len() {
        let _ = writeln!(
            c,
            "void {}(uint8_t *const *, const int64_t *, int64_t, int64_t);",
            smelt_lower::kernel_symbol(kernel_prefix, i)
        );
    }
    let dim_values: Vec<String> = program
        .dims()
        .iter()
        .map(|d| dims.get(d).copied().unwrap_or(0).to_string())
        .collect();
    let _ = writeln!(
        c,
        "static const int64_t smelt_dims[] = {{{}}};",
        if dim_values.is_empty() {
            "0".to_string()
        } else {
            dim_values.join(", ")
        }
    );
    c.push_str("static const struct smelt_buffer_desc smelt_buffers[] = {\n");
    for (i, buf) in program.buffers.iter().enumerate() {
        let (kind, index, offset) = match &buf.kind {
            BufferKind::Input(n) => ("SMELT_BUF_INPUT", *n as u64, 0),
            BufferKind::Output(n) => ("SMELT_BUF_OUTPUT", *n as u64, 0),
            BufferKind::Constant { .. } => ("SMELT_BUF_CONST", 0, const_offsets[&(i as u32)]),
            BufferKind::Temp => ("SMELT_BUF_TEMP", 0, plan.offsets[i].unwrap_or(0)),
            BufferKind::View(_) => (
                "SMELT_BUF_VIEW",
                program.root(smelt_lower::BufferId(i as u32)).0 as u64,
                0,
            ),
        };
        let _ = writeln!(
            c,
            "    {{{kind}, {index}, {offset}ULL}}, /* b{i} {} */",
            c_comment(&buf.name)
        );
    }
    if program.buffers.is_empty() {
        c.push_str("    {0, 0, 0},\n");
    }
    c.push_str("};\nstatic const struct smelt_kernel_desc smelt_kernels[] = {\n");
    for (i, k) in program.kernels.iter().enumerate() {
        let points = crate::work_points(k, &|s| {
            size(s).map_err(|e| crate::RuntimeError::Input(e.to_string()))
        })
        .map_err(|e| LowerError::Input(e.to_string()))?;
        let (extent, align) = match k.schedule.parallel_axis {
            Some(a) => (
                size(&k.loops[a].extent)?,
                k.schedule.tiles.get(a).copied().unwrap_or(1).max(1),
            ),
            None => (0, 1),
        };
        let _ = writeln!(
            c,
            "    {{{}, {extent}, {align}, {points}ULL}}, /* {} */",
            smelt_lower::kernel_symbol(kernel_prefix, i),
            c_comment(&k.name)
        );
    }
    if program.kernels.is_empty() {
        c.push_str("    {0, 0, 0, 0},\n");
    }
    c.push_str("};\n");
    for (what, list) in [("in", &program.inputs), ("out", &program.outputs)] {
        for (i, &b) in list.iter().enumerate() {
            let buf = program.buffer(b);
            let shape: Vec<String> = buf
                .shape
                .iter()
                .map(|s| size(s).map(|v| v.to_string()))
                .collect::<Result<_, _>>()?;
            let _ = writeln!(
                c,
                "static const int64_t smelt_{what}{i}_shape[] = {{{}}};",
                if shape.is_empty() {
                    "0".into()
                } else {
                    shape.join(", ")
                }
            );
        }
        let _ = writeln!(
            c,
            "static const struct smelt_io_desc smelt_{what}puts[] = {{"
        );
        for (i, &b) in list.iter().enumerate() {
            let buf = program.buffer(b);
            let code = onnx_dtype_code(buf.dtype).ok_or_else(|| {
                LowerError::Input(format!(
                    "{what}put `{}` has dtype {}, which the C interface does not carry",
                    buf.name, buf.dtype
                ))
            })?;
            let _ = writeln!(
                c,
                "    {{\"{}\", {code}, {}, smelt_{what}{i}_shape, {}ULL}},",
                c_string(&buf.name),
                buf.shape.len(),
                plan.sizes[b.0 as usize]
            );
        }
        if list.is_empty() {
            c.push_str("    {\"\", 0, 0, 0, 0},\n");
        }
        c.push_str("};\n");
    }
    c.push('\n');
    c.push_str(C_RUNTIME);
    Ok(AotSources {
        header,
        source: c,
        weights,
        arena_bytes: plan.arena_bytes,
    })
}

/// A name made safe inside a C comment.
fn c_comment(s: &str) -> String {
    s.replace("*/", "* /")
}

/// A name made safe inside a C string literal.
fn c_string(s: &str) -> String {
    s.chars()
        .flat_map(|ch| match ch {
            '"' | '\\' => vec!['\\', ch],
            c if c.is_ascii_graphic() || c == ' ' => vec![c],
            _ => vec!['?'],
        })
        .collect()
}
