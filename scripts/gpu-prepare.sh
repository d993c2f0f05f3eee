#!/usr/bin/env bash
# Here, with network: gather what scripts/gpu-check.sh needs on a GPU machine that has PyTorch
# (CUDA build) but no network: wheels of the project's pure-Python requirements in .whl/ and the
# EMNIST test split in data/emnist/ (both git-ignored; together about 45 MB). Carry both along.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl data/emnist
# plotly (report.html) + narwhals, and the fonts of the built-in synthetic data set; torch, numpy,
# pillow and safetensors are on the GPU image already.
pkgs=$(grep -E '^(plotly|fontpkg)' requirements.txt | cut -d' ' -f1)
narwhals=$($PY -m pip show narwhals 2>/dev/null | awk '/^Version:/{print "narwhals=="$2}')
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl $pkgs ${narwhals:-narwhals}
src=${LENET_EMNIST:-../shared/data/emnist}
if [ -d "$src" ]; then cp -f "$src"/emnist-byclass-* data/emnist/; fi
du -sh .whl data/emnist
