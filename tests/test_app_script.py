"""scripts/app.sh as a newcomer runs it: the first start says what it is doing at each step (the
install takes minutes), later starts are quiet, and `--server.port` reaches the server and the
"open http://localhost:PORT" line. Run on a copy of the scripts with a stand-in .venv whose pip
and python only report how they were called, so nothing is installed."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = """#!/usr/bin/env bash
echo "{name} $*"
"""


def test_first_start_shows_progress_and_the_port_passes_through(tmp_path):
    (tmp_path / "scripts").mkdir()
    for f in ("scripts/app.sh", "scripts/setup.sh", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / f, tmp_path / f)
    bin_ = tmp_path / ".venv" / "bin"
    bin_.mkdir(parents=True)
    for name in ("pip", "python"):
        (bin_ / name).write_text(STAND_IN.format(name=name))
        (bin_ / name).chmod(0o755)

    def start(*args: str) -> list[str]:
        out = subprocess.run(["bash", "scripts/app.sh", *args], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    first = start("--server.port", "8765")
    steps = ["Installing the pinned requirements", "pip install", "Compiling the numba", "python -c",
             "Setup done", "Starting the app", "python -m ui.serve --server.port 8765"]
    at = [next(i for i, line in enumerate(first) if line.startswith(s)) for s in steps]
    assert at == sorted(at), first  # each step announced before it runs, in order
    assert "http://localhost:8765" in first[at[5]]
    again = start("--server.port=8766")
    assert not any("Installing" in line or "Compiling" in line for line in again), again
    assert any("http://localhost:8766" in line for line in again), again
