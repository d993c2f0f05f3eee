"""The Studies page's jobs: a study in a worker process with its summary recorded live; reopen finished ones."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from lenet import settings
from lenet import studies
from lenet.data import CharacterSet
from lenet.runtime.jobs import Job
from lenet.core.net import Net
from lenet.grid.runfolder import parse_cell
from lenet.studies.common import command_line
from lenet.studies.splits import read_splits
from lenet.studies.tables import SHIPPED_SETS, have_shipped, shipped_rows
from lenet.runtime.tasks import job_function

from .background import submit
from .session import session_id, state


def studies_root() -> Path:
    return settings.home() / "studies" / session_id()


def start_study(name: str, quick: bool, seed: int, source: Net, ds: CharacterSet, targets: list[str],
                shipped: bool, preset: str | None = None) -> Job:
    """The study (its quick version and/or one of its presets) in a worker process
    (lenet.runtime.tasks.study_task), kept on disk so that a restart shows it interrupted and Resume goes on
    from its finished runs; the figure fills in after each run."""
    studies.settings(name, seed, quick=quick, preset=preset)  # raises before queueing
    tag = f"{'-quick' if quick else ''}{f'-{preset}' if preset else ''}"
    out = studies_root() / f"{name}{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    s = state()
    command = command_line(name, quick=quick, seed=seed, data=s.data_kind, data_dir=s.data_path, out=out.name,
                           source=None if shipped else "<the app's active source net>", preset=preset)
    spec = {"task": "study", "study": name, "quick": quick, "seed": seed, "data": [s.data_kind, s.data_path],
            "targets": list(targets), "out_dir": str(out), "command": command, **({"preset": preset} if preset else {})}
    label = f"{name}{' (quick)' if quick else ''}{f', {preset}' if preset else ''}, seed {seed}"
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


def read_study(folder: Path) -> tuple[dict, list[dict]]:
    """(meta.json, summary rows) of a finished study folder."""
    meta = json.loads((folder / "meta.json").read_text())
    with open(folder / "summary.csv", newline="") as f:
        rows = [{k: parse_cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return meta, rows


def shipped_study(name: str) -> list[dict]:
    """Every shipped set of results of study `name` (lenet.studies.tables.SHIPPED_SETS: several class splits each),
    read from the CSVs its command wrote, no training: [{"meta", "rows" (a readable table), "figures",
    "command", "title"}]."""
    mod = studies.get(name)
    out = []
    for study, folder, command, title in SHIPPED_SETS:
        if study != name or not have_shipped(name, folder):
            continue
        meta, rows, per = read_splits(folder / name)
        summary = [r for rs in per.values() for r in rs] if name == "class-choice" else rows  # sets differ per split
        out.append({"meta": meta, "rows": shipped_rows(mod, rows), "figures": mod.figures(summary),
                    "command": command, "title": title})
    return out


# Plain words for the studies' terms, shown beside each study (a reader need not know the papers).
TERMS = {
    "finetune": [("AnB", "the paper's transfer: the retained levels copied from the source net and frozen "
                         "(Yosinski et al. 2014's name)"),
                 ("AnB+ / lr_mult", "the same levels allowed to keep learning, at the learning rate times lr_mult: "
                                    "0 keeps them frozen (AnB), 0.1 lets them change slowly, 1 as fast as the new "
                                    "levels"),
                 ("source drop", "how much accuracy the source net loses on its own characters once the "
                                 "retrained levels are put back under its upper levels (forgetting)")],
    "partial": [("kept fraction p", "the share of a level's feature maps kept frozen from the source net; the "
                                    "others start afresh and learn"),
                ("OBD saliency", "Optimal Brain Damage (LeCun 1990): how much the error would grow without a map, "
                                 "estimated from its second derivatives (their Gauss-Newton approximation)"),
                ("first-order Taylor", "the same estimate from first derivatives only (activation x gradient)"),
                ("mutual information", "how much a map's output tells about which new character it sees"),
                ("random", "maps kept by chance: the baseline every criterion must beat"),
                ("vs random", "a criterion's accuracy minus random's, trial by trial, with its 95% interval")],
    "source-classes": [("S", "the number of characters the source net learned before transfer"),
                       ("per-class / fixed-total", "400 images of each source character, or 8,000 images in "
                                                   "all however many characters (in the hundreds: 15 of each, "
                                                   "or 600 in all)"),
                       ("in the hundreds", "S up to 200: Omniglot's background characters join EMNIST's as "
                                           "source characters (never Latin or Greek ones, which could be "
                                           "twins of the new letters)")],
    "class-choice": [("nearest-centroid proxy", "a quick guess at transfer: the average frozen C5 output of "
                                                "each new character's k samples, and which average a test "
                                                "image is nearest to, with no training")],
    "controls": [("AnB", "the paper's transfer: levels copied from the source net and frozen"),
                 ("random-frozen / random-scaled", "levels with random weights, frozen (as initialised, or "
                                                   "rescaled to the source net's weights' size): the net's shape "
                                                   "without knowledge"),
                 ("in-domain", "levels of a net trained on the new characters themselves"),
                 ("nearest-centroid", "no training at all: each test image gets the character whose average "
                                      "C5 output is nearest")],
}

COLUMNS = {"target_acc": "test accuracy", "target_acc_min": "min", "target_acc_max": "max",
           "source_acc": "source accuracy", "source_drop": "source drop", "proxy_acc": "proxy accuracy",
           "kept_fraction": "kept fraction p", "lr_mult": "lr_mult", "runs": "runs", "vs_random": "vs random",
           "vs_random_low": "vs random, low", "vs_random_high": "vs random, high"}
PERCENT = ("test accuracy", "min", "max", "source accuracy", "source drop", "proxy accuracy", "kept fraction p",
           "vs random", "vs random, low", "vs random, high")


def summary_table(rows: list[dict]) -> tuple[list[dict], tuple[str, ...]]:
    """A study's summary rows with readable headers, and which columns are percentages (for ui.table)."""
    return [{COLUMNS.get(k, k.replace("_", " ")): v for k, v in r.items()} for r in rows], PERCENT
