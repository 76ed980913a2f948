#!/usr/bin/env python3
"""Write the hostile model files of this folder (the outputs are committed).

Each model is small and crafted to make a careless importer read outside the model
folder, allocate far more than the file holds, overflow, loop or recurse without bound.
`expected.txt` lists what the importer must say about each one, and
`tests/tests/hostile_models.rs` checks it. Regenerate with

    python3 tests/hostile/make.py

(needs the `onnx` package; the output is deterministic).
"""

import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 17


def f32(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def add_model(init, name="hostile", opset=OPSET, dims=(4,)):
    """y = x + w with initializer `init` as w."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
        name,
        [f32("x", list(dims))],
        [f32("y", None)],
        initializer=[init],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def raw_tensor(name, dtype, dims, raw):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def external_tensor(name, location, offset=None, length=None):
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend([4])
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = t.external_data.add()
            entry.key = key
            entry.value = str(value)
    return t


def nested_if(depth):
    """A graph whose If node's then_branch holds an If node ... `depth` levels down."""
    leaf = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["leaf"], name="leaf")],
        "leaf",
        [],
        [f32("leaf", [4])],
    )
    inner = leaf
    for level in range(depth - 1, -1, -1):
        node = helper.make_node(
            "If",
            ["cond"],
            ["out%d" % level],
            name="if%d" % level,
            then_branch=inner,
            else_branch=leaf,
        )
        inner = helper.make_graph(
            [node], "level%d" % level, [], [f32("out%d" % level, [4])]
        )
    inner.input.extend([helper.make_tensor_value_info("cond", TensorProto.BOOL, [])])
    inner.input.extend([f32("x", [4])])
    return helper.make_model(inner, opset_imports=[helper.make_opsetid("", OPSET)])


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_if_bytes(depth):
    """`nested_if(depth)` written as raw protobuf from the inside out: the protobuf
    library itself refuses to build (or parse) messages this deep."""
    leaf = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["leaf"], name="leaf")],
        "leaf",
        [],
        [f32("leaf", [4])],
    ).SerializeToString()
    graph = leaf
    for level in range(depth - 1, -1, -1):
        # AttributeProto: name = 1, g = 6, type = 20 (GRAPH = 5).
        attr = field(1, "then_branch") + varint(20 << 3) + varint(5) + field(6, graph)
        # NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5.
        node = (
            field(1, "cond")
            + field(2, "out%d" % level)
            + field(3, "if%d" % level)
            + field(4, "If")
            + field(5, attr)
        )
        # GraphProto: node = 1, name = 2.
        graph = field(1, node) + field(2, "level%d" % level)
    # ModelProto: ir_version = 1, graph = 7, opset_import = 8 (version = 2).
    opset = varint(2 << 3) + varint(OPSET)
    return varint(1 << 3) + varint(8) + field(8, opset) + field(7, graph)


def models():
    out = {}
    # External data that leaves the model folder.
    out["path_traversal"] = add_model(external_tensor("w", "../../etc/passwd"))
    out["absolute_path"] = add_model(external_tensor("w", "/etc/passwd"))
    # The test creates `escape.bin` as a symlink to a file outside the model's folder.
    out["symlink_escape"] = add_model(external_tensor("w", "escape.bin"))
    # `hostile.bin` (16 bytes) is committed next to the models.
    out["external_past_end"] = add_model(
        external_tensor("w", "hostile.bin", offset=8, length=64)
    )
    out["external_offset_overflow"] = add_model(
        external_tensor("w", "hostile.bin", offset=2**64 - 1, length=16)
    )
    # 2^50 floats declared, four bytes present.
    out["size_bomb"] = add_model(
        raw_tensor("w", TensorProto.FLOAT, [2**20, 2**20, 2**10], b"\0" * 4)
    )
    # The element count overflows 64 bits.
    out["dims_overflow"] = add_model(
        raw_tensor("w", TensorProto.FLOAT, [2**31, 2**31, 2**31, 8], b"\0" * 4)
    )
    # Four floats declared, eight bytes present.
    out["short_data"] = add_model(raw_tensor("w", TensorProto.FLOAT, [4], b"\0" * 8))
    # Negative dim.
    out["negative_dim"] = add_model(raw_tensor("w", TensorProto.FLOAT, [-4], b"\0" * 16))
    # int4: 3 elements need 2 packed bytes; 1 is present.
    out["int4_odd"] = add_model(raw_tensor("w", TensorProto.INT4, [3], b"\x21"))
    # Data type 99 does not exist.
    out["unknown_dtype"] = add_model(raw_tensor("w", 99, [4], b"\0" * 16))
    # Opset far past the newest one.
    out["opset_out_of_range"] = add_model(
        raw_tensor("w", TensorProto.FLOAT, [4], b"\0" * 16), opset=99
    )
    # Opset 6 broadcasting with axis = 2^63 - 1: `axis + rank(B)` used to overflow.
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add", broadcast=1, axis=2**63 - 1)],
        "legacy",
        [f32("a", [2, 3, 4]), f32("b", [3])],
        [f32("y", None)],
    )
    out["legacy_axis_overflow"] = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 6)]
    )
    # first -> second -> first.
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["b"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["b"], name="second"),
        ],
        "cycle",
        [f32("x", [4])],
        [f32("a", [4])],
    )
    out["cycle"] = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    # An input nothing defines.
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "ghost"], ["y"], name="haunted")],
        "dangling",
        [f32("x", [4])],
        [f32("y", [4])],
    )
    out["dangling_input"] = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    # Two nodes define `y`.
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["y"], name="one"),
            helper.make_node("Neg", ["x"], ["y"], name="two"),
        ],
        "duplicate",
        [f32("x", [4])],
        [f32("y", [4])],
    )
    out["duplicate_output"] = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    # Subgraphs nested 10 deep; the test allows 4.
    out["depth_bomb"] = nested_if(10)
    # A 200-node chain; the test allows 50 nodes.
    nodes = [
        helper.make_node("Relu", ["x" if i == 0 else "v%d" % (i - 1)], ["v%d" % i], name="r%d" % i)
        for i in range(200)
    ]
    graph = helper.make_graph(nodes, "many", [f32("x", [4])], [f32("v199", [4])])
    out["too_many_nodes"] = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)]
    )
    return out


def main():
    for name, model in sorted(models().items()):
        data = model.SerializeToString()
        with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
            f.write(data)
    # Nested 60 deep: past the protobuf decoder's recursion limit, so decoding fails.
    with open(os.path.join(HERE, "depth_bomb_decoder.onnx"), "wb") as f:
        f.write(nested_if_bytes(60))
    # A valid model cut in half.
    data = add_model(raw_tensor("w", TensorProto.FLOAT, [4], b"\0" * 16)).SerializeToString()
    with open(os.path.join(HERE, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    with open(os.path.join(HERE, "hostile.bin"), "wb") as f:
        f.write(bytes(range(16)))


if __name__ == "__main__":
    main()
