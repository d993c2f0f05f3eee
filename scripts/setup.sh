#!/usr/bin/env bash
# Create .venv and install the project's pinned requirements (idempotent). The first run takes
# minutes (torch is large) and says what it is doing at each step; later runs are silent.
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:-requirements.txt}
if [ ! -x .venv/bin/python ]; then
  echo "First start: creating the virtual environment .venv (once)..."
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)-$(basename "$req")
if [ ! -f "$stamp" ]; then
  echo "Installing the pinned requirements ($req) into .venv, once: a few minutes (torch is ~200 MB)..."
  .venv/bin/pip install --progress-bar on -r "$req"  # not -q: every package is shown as it comes
  # compile the numba kernels once now (lenet/kernels/__pycache__), not in the first training
  echo "Compiling the numba CPU kernels, once (about 20 s)..."
  .venv/bin/python -c "from lenet.core.train import warm_kernels; warm_kernels()" || echo "warning: the numba kernels did not compile; LENET_KERNELS=torch runs without them"
  touch "$stamp"
  echo "Setup done."
fi
