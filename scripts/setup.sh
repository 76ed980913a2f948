#!/usr/bin/env bash
# Python packages the tests and tools use. `onnx` (pinned: the conformance manifest
# tests/onnx-node-manifest.txt is for this exact release) provides the ONNX backend
# node-test cases, which tests/tests/onnx_conformance.rs writes to .cache/onnx-node-tests
# with scripts/gen_onnx_node_tests.py on first run; onnxruntime and numpy are for the
# comparison scripts and for regenerating test fixtures.
set -euo pipefail
python3 -m pip install --quiet "onnx==1.23.2" "onnxruntime==1.32.0" numpy
