#!/usr/bin/env python3
"""Write ONNX's backend node-test cases to disk for smelt's conformance harness.

The `onnx` wheel ships the generators of its node tests, not their data. This script
runs every generator once (`onnx.backend.test.case.node.collect_testcases(None)`) and
writes each case in the layout ONNX's own `backend-test-tools generate-data` uses:

    <out>/<case name>/model.onnx
    <out>/<case name>/test_data_set_N/input_K.pb
    <out>/<case name>/test_data_set_N/output_K.pb

Plain tensors are serialized `TensorProto`s; sequence, optional and map values are
written with onnx's own helpers (`SequenceProto`, `OptionalProto`, `MapProto`).
`<out>/index.json` lists every case: its op, the kind of each input and output
(`tensor`, `sequence`, `optional`, `map`), whether all of them are plain tensors
(`tensor_only`), whether onnx hands any value over as a ready-made `TensorProto`
rather than a numpy array (`tensorproto_values`: low-bit types such as float8, int4
and float4 whose values numpy cannot hold), and onnx's tolerances for the case.

The folder is written under a temporary name and renamed into place, and a stamp file
records the onnx version, so a second run with the same onnx does nothing (pass
`--force` to rewrite anyway). Usage:

    python3 scripts/gen_onnx_node_tests.py [--out DIR] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import warnings

# Bump when the layout written here changes, so old caches are rewritten.
LAYOUT_VERSION = 1
STAMP = ".complete"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, ".cache", "onnx-node-tests")
EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


def stamp_text(onnx_version: str, count: int) -> str:
    return f"onnx {onnx_version}\nlayout {LAYOUT_VERSION}\ncases {count}\n"


def is_current(out: str, onnx_version: str) -> bool:
    """True when `out` holds a complete set written for this onnx version."""
    try:
        with open(os.path.join(out, STAMP)) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return lines[:2] == [f"onnx {onnx_version}", f"layout {LAYOUT_VERSION}"]


def value_kind(type_proto) -> str:
    kind = type_proto.WhichOneof("value")
    return {
        "tensor_type": "tensor",
        "sequence_type": "sequence",
        "optional_type": "optional",
        "map_type": "map",
        "sparse_tensor_type": "sparse_tensor",
    }.get(kind, str(kind))


def serialize(value, value_info, numpy_helper, TensorProto, np) -> bytes:
    """One input or output value as bytes, the way onnx's generate-data writes it."""
    kind = value_kind(value_info.type)
    name = value_info.name
    if kind == "map":
        return numpy_helper.from_dict(value, name).SerializeToString()
    if kind == "sequence":
        return numpy_helper.from_list(value, name).SerializeToString()
    if kind == "optional":
        return numpy_helper.from_optional(value, name).SerializeToString()
    if isinstance(value, TensorProto):
        return value.SerializeToString()
    # Numpy scalars (np.float32(1.0)) come through as well as arrays.
    return numpy_helper.from_array(np.asarray(value), name).SerializeToString()


def op_under_test(case, by_name) -> str:
    """The op a case tests: its single node's op, or for an `_expanded` case (the op's
    function body inlined) the op of the case it was expanded from."""
    base = EXPANDED.sub("", case.name)
    if base != case.name and base in by_name:
        case = by_name[base]
    nodes = case.model.graph.node
    if len(nodes) == 1:
        node = nodes[0]
        return f"{node.domain}.{node.op_type}" if node.domain else node.op_type
    return ""


def write_all(out: str) -> int:
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        # The generators compute expected outputs with numpy and trip its overflow and
        # divide-by-zero warnings on purpose (inf/nan cases).
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    by_name = {c.name: c for c in cases}

    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = f"{os.path.abspath(out)}.partial-{os.getpid()}"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)

    index = []
    for case in sorted(cases, key=lambda c: c.name):
        assert case.model is not None and case.data_sets, case.name
        graph = case.model.graph
        case_dir = os.path.join(tmp, case.name)
        os.makedirs(case_dir)
        with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        as_proto = False
        for n, (inputs, outputs) in enumerate(case.data_sets):
            data_dir = os.path.join(case_dir, f"test_data_set_{n}")
            os.makedirs(data_dir)
            for prefix, values, infos in (
                ("input", inputs, graph.input),
                ("output", outputs, graph.output),
            ):
                if len(values) != len(infos):
                    raise SystemExit(
                        f"{case.name}: {len(values)} {prefix} values for "
                        f"{len(infos)} graph {prefix}s"
                    )
                for k, (value, info) in enumerate(zip(values, infos)):
                    as_proto |= isinstance(value, TensorProto)
                    data = serialize(value, info, numpy_helper, TensorProto, np)
                    with open(os.path.join(data_dir, f"{prefix}_{k}.pb"), "wb") as f:
                        f.write(data)
        inputs = [{"name": i.name, "kind": value_kind(i.type)} for i in graph.input]
        outputs = [{"name": o.name, "kind": value_kind(o.type)} for o in graph.output]
        index.append(
            {
                "name": case.name,
                "op": op_under_test(case, by_name),
                "tensor_only": all(v["kind"] == "tensor" for v in inputs + outputs),
                "tensorproto_values": as_proto,
                "inputs": inputs,
                "outputs": outputs,
                "data_sets": len(case.data_sets),
                "rtol": case.rtol,
                "atol": case.atol,
            }
        )

    summary = {
        "onnx_version": onnx.__version__,
        "layout_version": LAYOUT_VERSION,
        "cases": len(index),
        "tensor_only": sum(c["tensor_only"] for c in index),
        "index": index,
    }
    with open(os.path.join(tmp, "index.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(os.path.join(tmp, STAMP), "w") as f:
        f.write(stamp_text(onnx.__version__, len(index)))

    if os.path.exists(out):
        shutil.rmtree(out)
    os.rename(tmp, out)
    return len(index)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="cache folder (%(default)s)")
    parser.add_argument("--force", action="store_true", help="rewrite even if current")
    args = parser.parse_args()
    try:
        import onnx
    except ImportError:
        print("error: the `onnx` Python package is missing; run scripts/setup.sh", file=sys.stderr)
        return 1
    if not args.force and is_current(args.out, onnx.__version__):
        print(f"{args.out}: up to date (onnx {onnx.__version__})")
        return 0
    count = write_all(args.out)
    print(f"{args.out}: wrote {count} cases (onnx {onnx.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
