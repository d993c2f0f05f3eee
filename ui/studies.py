"""The Studies page's jobs: a study in a worker process with its summary recorded live; reopen finished ones."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from lenet import studies
from lenet.data import CharacterSet
from lenet.runtime.jobs import Job
from lenet.core.net import Net
from lenet.studies.common import command_line
from lenet.runtime.tasks import job_function

from .background import submit
from .session import lenet_home, session_id, state


def studies_root() -> Path:
    return lenet_home() / "studies" / session_id()


def start_study(name: str, quick: bool, seed: int, source: Net, ds: CharacterSet, targets: list[str],
                shipped: bool) -> Job:
    """The study in a worker process (lenet.runtime.tasks.study_task), kept on disk so that a restart shows it
    interrupted and Resume goes on from its finished runs; the figure fills in after each run."""
    mod = studies.get(name)
    (mod.Settings.quick(seed) if quick else mod.Settings(seed=seed)).check()  # raises before queueing
    out = studies_root() / f"{name}{'-quick' if quick else ''}-{time.strftime('%Y%m%d-%H%M%S')}"
    s = state()
    command = command_line(name, quick=quick, seed=seed, data=s.data_kind, data_dir=s.data_path, out=out.name,
                           source=None if shipped else "<the app's active source net>")
    spec = {"task": "study", "study": name, "quick": quick, "seed": seed, "data": [s.data_kind, s.data_path],
            "targets": list(targets), "out_dir": str(out), "command": command}
    label = f"{name}{' (quick)' if quick else ''}, seed {seed}"
    return submit("study", label, job_function(spec, {"source": source}, {}, ds), spec=spec, nets={"source": source},
                  study=name, out_dir=str(out))


def live_summary(snap) -> list[dict]:
    rows = [r["rows"] for r in snap.records if r.get("kind") == "summary"]
    return rows[-1] if rows else []


def study_dirs() -> list[Path]:
    """This session's study folders with results, newest first."""
    root = studies_root()
    return sorted((p.parent for p in root.glob("*/summary.csv")), key=lambda p: p.stat().st_mtime,
                  reverse=True) if root.is_dir() else []


def _number(v: str):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def read_study(folder: Path) -> tuple[dict, list[dict]]:
    """(meta.json, summary rows) of a finished study folder."""
    meta = json.loads((folder / "meta.json").read_text())
    with open(folder / "summary.csv", newline="") as f:
        rows = [{k: _number(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return meta, rows
