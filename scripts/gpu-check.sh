#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the CUDA tests, `bench --json --device cuda` and the full
# 150-run grid on the GPU, each timed. Budget: under 8 minutes (each stage has its own limit).
# Uses the PyTorch that is there (it must be a CUDA build); installs the rest from .whl/ when
# present (scripts/gpu-prepare.sh, for machines without network), else from PyPI.
# Outputs go to $OUT (or /tmp/gpu-check): tests.txt, grid.json, grid.txt, bench.json, summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[gpu-check $(date +%T)] $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi -L 2>&1 | tee -a "$OUT/summary.txt"
$PY -c "import torch; assert torch.cuda.is_available(), 'this PyTorch sees no CUDA GPU'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" 2>&1 \
  | tee -a "$OUT/summary.txt" || exit 1

if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lenet-site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/lenet-site${PYTHONPATH:+:$PYTHONPATH}
else  # everything but torch (keep the CUDA build) and the app's packages
  grep -vE '^(torch|streamlit)' requirements.txt > /tmp/lenet-gpu-req.txt
  $PY -m pip install -q -r /tmp/lenet-gpu-req.txt pytest || exit 1
fi
export LENET_CACHE=${LENET_CACHE:-/tmp/lenet-cache}
if [ -f data/emnist/emnist-byclass-test-images-idx3-ubyte.gz ]; then
  mkdir -p "$LENET_CACHE/emnist" && cp -f data/emnist/emnist-byclass-* "$LENET_CACHE/emnist/"
fi
if $PY -c "from lenet.data import find_emnist; assert find_emnist()" 2>/dev/null; then
  data=emnist; source=assets/source-emnist
else
  data=synthetic; source=assets/source-synthetic
fi
log "data: $data"

log "1/3 CUDA tests"
t0=$(date +%s.%N)
timeout 120 $PY -m pytest -q -rs tests/test_device.py > "$OUT/tests.txt" 2>&1; rc=$?
log "tests rc=$rc in $(since "$t0") s: $(tail -1 "$OUT/tests.txt")"

log "2/3 the full 150-run grid on the GPU (goal on one H100: <= 15 s)"
rm -rf /tmp/lenet-grid
t0=$(date +%s.%N)
timeout 150 $PY -m lenet reproduce --data "$data" --source "$source" --device cuda --out /tmp/lenet-grid --json \
  > "$OUT/grid.json" 2> "$OUT/grid.txt"; rc=$?
log "grid rc=$rc in $(since "$t0") s (wall, process start included); meta.json seconds: \
$($PY -c "import json; print(json.load(open('/tmp/lenet-grid/meta.json'))['seconds'])" 2>/dev/null)"
cp -f /tmp/lenet-grid/runs.csv /tmp/lenet-grid/summary.csv "$OUT/" 2>/dev/null

log "3/3 bench --json --device cuda"
t0=$(date +%s.%N)
timeout 180 $PY -m lenet bench --json --device cuda > "$OUT/bench.json" 2> "$OUT/bench.err"; rc=$?
log "bench rc=$rc in $(since "$t0") s: $(cat "$OUT/bench.json")"
