"""Choosing the transfer recipe on evidence: candidate recipes run over the grid and are compared
on their mean validation accuracy (never on the test set, never on the size of the transfer effect).

Each candidate is an ordinary resumable reproduction in OUT/<name>/ (runs.csv, summary.csv,
report.html, meta.json); `comparison.csv` holds one row per candidate: the mean validation accuracy
over every run, the same per k, the mean number of epochs and the wall time.
"""
from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from lenet.config import RECIPE_CANDIDATES, Recipe
from lenet.data import CharacterSet
from lenet.files import write_text
from lenet.grid.cells import RunResult
from lenet.grid.experiment import reproduce
from lenet.core.net import Net

COMPARISON = "comparison.csv"


def check_candidates(names) -> list[str]:
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in RECIPE_CANDIDATES]
    if unknown:
        raise ValueError(f"unknown recipe candidate(s) {', '.join(unknown)}; "
                         f"known: {', '.join(RECIPE_CANDIDATES)}")
    if not names:
        raise ValueError("name at least one recipe candidate")
    return names


def describe(recipe: Recipe) -> str:
    """The settings that tell candidates apart, in a few words."""
    stop = []
    if recipe.target_train_acc <= 1:
        stop.append(f"train acc {recipe.target_train_acc:.0%}")
    if recipe.target_train_loss > 0:
        stop.append(f"train loss <= {recipe.target_train_loss:g}" +
                    (f" at train acc >= {recipe.loss_needs_acc:.0%}" if recipe.loss_needs_acc else ""))
    if recipe.val_patience:
        stop.append(f"best validation epoch (patience {recipe.val_patience})")
    stop.append(f"max {recipe.max_steps} steps" if recipe.max_steps else f"max {recipe.max_epochs} epochs")
    return f"batch {recipe.batch_size}, lr {recipe.lr:g}; stop: {', '.join(stop)}"


def candidate_row(name: str, recipe: Recipe, runs: list[RunResult], seconds: float) -> dict:
    ks = sorted({r.k for r in runs})
    return {"candidate": name, "recipe": describe(recipe), "runs": len(runs),
            "val_mean": float(np.mean([r.val_acc for r in runs])),
            **{f"val_k{k}": float(np.mean([r.val_acc for r in runs if r.k == k])) for k in ks},
            "epochs_mean": float(np.mean([r.epochs for r in runs])),
            "steps_mean": float(np.mean([r.steps for r in runs])),
            "capped": sum(r.capped for r in runs),
            "n0_unfitted": sum(r.n == 0 and r.train_acc < 1 for r in runs),  # a fair baseline fits its set
            "seconds": round(seconds, 1)}


def comparison_csv(rows: list[dict]) -> str:
    cols = list(dict.fromkeys(c for r in rows for c in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: (f"{v:.6f}" if isinstance(v, float) and c.startswith("val") else v) for c, v in r.items()})
    return buf.getvalue()


def compare(source: Net, ds: CharacterSet, targets, names, out_dir, *, levels=(0, 1, 2, 3, 4, 5),
            samples=(1, 5, 10, 20, 40), trials: int = 2, seed: int = 0, fast: bool = True,
            stop: threading.Event | None = None, progress: Callable[[str, int, int], None] | None = None,
            log: Callable[[str], None] | None = None, device=None, ray_address: str | None = None) -> list[dict]:
    """Run every candidate's grid (resuming finished runs) and rank them by mean validation accuracy;
    `device` and `ray_address` as in `reproduce`."""
    names = check_candidates(names)
    out = Path(out_dir)
    rows = []
    for name in names:
        recipe = RECIPE_CANDIDATES[name]
        runs = reproduce(source, ds, targets, levels=levels, samples=samples, trials=trials, seed=seed,
                         recipe=recipe, out_dir=out / name, fast=fast, stop=stop, log=log, device=device,
                         ray_address=ray_address,
                         progress=None if progress is None else (lambda d, t, name=name: progress(name, d, t)))
        if stop is not None and stop.is_set():
            break
        seconds = json.loads((out / name / "meta.json").read_text()).get("seconds", 0.0)
        rows.append(candidate_row(name, recipe, runs, seconds))
    rows.sort(key=lambda r: -r["val_mean"])
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / COMPARISON, comparison_csv(rows))
    return rows
