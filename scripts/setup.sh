#!/usr/bin/env bash
# What the tests and tools need beyond Rust:
# - LLVM 19 (Debian's llvm-19-dev) for the LLVM backend, which CI builds and tests
#   (`--all-features`); .cargo/config.toml points llvm-sys at /usr/lib/llvm-19.
# - ptxas from the `nvidia-cuda-nvcc-cu12` wheel, to validate emitted PTX in the tests.
# - Python packages: `onnx` (pinned: the conformance manifest
#   tests/onnx-node-manifest.txt is for this exact release) provides the ONNX backend
#   node-test cases, which tests/tests/onnx_conformance.rs writes to
#   .cache/onnx-node-tests with scripts/gen_onnx_node_tests.py on first run;
#   onnxruntime and numpy are for the comparison scripts and test fixtures.
set -euo pipefail
if [ ! -e /usr/lib/llvm-19/lib/libLLVM-19.so ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q llvm-19-dev \
        || { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q llvm-19-dev; }
fi
python3 -m pip install --quiet "onnx==1.23.2" "onnxruntime==1.32.0" numpy
# ptxas (no GPU needed) validates the PTX the LLVM backend emits for sm_80 and sm_90.
python3 -m pip install --quiet nvidia-cuda-nvcc-cu12
