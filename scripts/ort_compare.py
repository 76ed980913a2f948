#!/usr/bin/env python3
"""Run two ONNX models with ONNX Runtime on the same inputs and compare their outputs.

    scripts/ort_compare.py ORIGINAL.onnx EXPORTED.onnx NAME=FILE.npy ... [--ref OUT=FILE.npy ...]
                           [--opt-level disable|basic|extended|all]

Both models get the same named inputs (.npy files). Prints one JSON object on stdout:

    {"outputs": {"<name>": <max abs diff>, ...},
     "reference": {"<name>": <max abs diff of EXPORTED vs the file>, ...}}

Outputs are matched by name; every output of ORIGINAL must exist in EXPORTED with the
same shape and dtype. `--ref` compares an output of EXPORTED with a reference file
(e.g. outputs recorded from the original framework). `--opt-level` sets ONNX Runtime's
graph optimization level for both sessions (default `all`, ONNX Runtime's own default;
`disable` shows whether a difference comes from the graphs or from how ONNX Runtime
optimizes them: its fusions depend on the shape information a model carries). Exit status: 0 on success, 2 on a
usage or comparison error, 3 when numpy or onnxruntime is missing (run
scripts/setup.sh to install them).
"""

import json
import sys


def fail(msg, code=2):
    print(f"ort_compare: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    import numpy as np
    import onnxruntime as ort
except ImportError as e:
    fail(f"{e}; install the Python test tools with scripts/setup.sh", 3)


def parse_pairs(items, what):
    pairs = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            fail(f"{what} must be NAME=FILE.npy, got `{item}`")
        pairs[name] = np.load(path)
    return pairs


OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def run(path, feeds, level):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = OPT_LEVELS[level]
    try:
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types
        fail(f"onnxruntime cannot load {path}: {e}")
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    missing = wanted - feeds.keys()
    if missing:
        fail(f"{path}: no value given for input(s) {sorted(missing)}")
    try:
        values = sess.run(None, {k: v for k, v in feeds.items() if k in wanted})
    except Exception as e:
        fail(f"onnxruntime failed to run {path}: {e}")
    return dict(zip(names, values))


def max_abs_diff(a, b, what):
    if a.shape != b.shape:
        fail(f"{what}: shape {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        fail(f"{what}: dtype {a.dtype} vs {b.dtype}")
    if a.size == 0:
        return 0.0
    # float64 holds every difference of the common output types without wrapping
    # (integers, bools) or losing precision (float32 and narrower).
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def main(argv):
    refs = []
    rest = []
    level = "all"
    it = iter(argv)
    for a in it:
        if a == "--ref":
            refs.append(next(it, ""))
        elif a.startswith("--ref="):
            refs.append(a[len("--ref="):])
        elif a == "--opt-level":
            level = next(it, "")
        elif a.startswith("--opt-level="):
            level = a[len("--opt-level="):]
        else:
            rest.append(a)
    if level not in OPT_LEVELS:
        fail(f"--opt-level must be one of {sorted(OPT_LEVELS)}, got `{level}`")
    if len(rest) < 2:
        usage = "\n".join(__doc__.strip().splitlines()[2:4])
        fail(f"usage:\n{usage}")
    original, exported = rest[0], rest[1]
    feeds = parse_pairs(rest[2:], "an input")
    references = parse_pairs(refs, "--ref")

    want = run(original, feeds, level)
    got = run(exported, feeds, level)
    result = {"outputs": {}, "reference": {}}
    for name, value in want.items():
        if name not in got:
            fail(f"{exported} has no output `{name}` (it has {sorted(got)})")
        result["outputs"][name] = max_abs_diff(value, got[name], f"output `{name}`")
    for name, value in references.items():
        if name not in got:
            fail(f"--ref {name}: {exported} has no such output")
        result["reference"][name] = max_abs_diff(
            value, got[name], f"output `{name}` vs its reference"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
