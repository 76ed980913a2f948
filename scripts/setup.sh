#!/usr/bin/env bash
# Optional tools: Python packages used to regenerate test fixtures and to run the
# comparison scripts against ONNX Runtime. The test suite itself needs none of them.
set -euo pipefail
python3 -m pip install --quiet "onnx==1.23.2" "onnxruntime==1.32.0" numpy
