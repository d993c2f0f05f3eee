#!/usr/bin/env bash
# Create .venv and install the project's pinned requirements (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:-requirements.txt}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)-$(basename "$req")
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q -r "$req"
  # compile the numba kernels once now (lenet/kernels/__pycache__), not in the first training
  .venv/bin/python -c "from lenet.core.train import warm_kernels; warm_kernels()" || echo "warning: the numba kernels did not compile; LENET_KERNELS=torch runs without them"
  touch "$stamp"
fi
