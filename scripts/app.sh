#!/usr/bin/env bash
# Set up (first time only) and run the app: http://localhost:8501
# Streamlit options pass through, e.g. another port:  ./scripts/app.sh --server.port 8502
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh requirements.txt
port=8501
for ((i = 1; i <= $#; i++)); do  # the port the server will use, to say where to open it
  case "${!i}" in
    --server.port=*) port="${!i#*=}" ;;
    --server.port) j=$((i + 1)); port="${!j:-$port}" ;;
  esac
done
echo "Starting the app: loading torch and plotly first (10-20 s), then open http://localhost:$port"
exec .venv/bin/python -m ui.serve "$@"  # streamlit run app.py, warmed up first (ui/serve.py)
