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
  touch "$stamp"
fi
