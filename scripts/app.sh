#!/usr/bin/env bash
# Set up (first time only) and run the app: http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh requirements.txt
exec .venv/bin/python -m ui.serve "$@"  # streamlit run app.py, warmed up first (ui/serve.py)
