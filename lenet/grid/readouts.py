"""Readouts beside the paper's in the grid: `reproduce --readouts mse,ce,centroid,probe`.

The grid's own runs are the paper's readout (mse) and keep runs.csv exactly as before. Every other
readout (lenet.core.readouts) runs on the very same cells: the same training samples (transfer_split
with the grid's seed and trial), the same fixed test characters, the same run seed. Its runs go to
readouts.csv (n, k, trial, readout, seed, test_acc, seconds; resumable like runs.csv), and
readouts.csv's side-by-side table (mean test accuracy per n and k, a column per readout) to
readouts-summary.csv and readouts.html.
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import numpy as np
import torch

from lenet.config import TRANSFER_RECIPE, Recipe
from lenet.core.net import Net
from lenet.core.readouts import DEFAULT, READOUTS, check_readouts, readout
from lenet.data import CharacterSet, to_net_input
from lenet.data.protocol import transfer_split
from lenet.files import write_text
from lenet.grid.cells import TEST_PER_CLASS, Cell, RunResult, run_seed
from lenet.grid.runfolder import Table, csv_text, read_rows
from lenet.report.html import CSS, escape, html_table

CSV, SUMMARY, REPORT = "readouts.csv", "readouts-summary.csv", "readouts.html"


TABLE = Table(key=("n", "k", "trial", "readout"), result=("seed", "test_acc", "seconds"),
              types=dict(n=int, k=int, trial=int, readout=str, seed=int, test_acc=float, seconds=float))


def read_readouts(path: Path) -> list[dict]:
    """Finished readout runs from readouts.csv ([] when there is none); a damaged file is a RunsFileError."""
    if not path.exists():
        return []
    return read_rows(path, TABLE, check=lambda r: None if r["readout"] in READOUTS else f"unknown readout {r['readout']!r}")


def run_readouts(source: Net, ds: CharacterSet, target_classes, cells: list[Cell], kinds, *, seed: int = 0,
                 recipe: Recipe = TRANSFER_RECIPE, out_dir=None, stop=None, progress=None, device=None) -> list[dict]:
    """Every (cell, readout) not already in out_dir/readouts.csv, mse excepted (the grid's own runs)."""
    kinds = [k for k in check_readouts(kinds) if k != DEFAULT]
    path = Path(out_dir) / CSV if out_dir is not None else None
    rows = read_readouts(path) if path is not None else []
    done = {(r["n"], r["k"], r["trial"], r["readout"]) for r in rows}
    todo = [(c, kind) for c in cells for kind in kinds if (c.n, c.k, c.trial, kind) not in done]
    for i, (cell, kind) in enumerate(todo):
        if stop is not None and stop.is_set():
            break
        t0 = time.perf_counter()
        split = transfer_split(ds, target_classes, cell.k, cell.trial, seed, TEST_PER_CLASS,
                               source_classes=source.classes)
        s = run_seed(seed, cell)
        pred = readout(kind, source.model, cell.n, to_net_input(split.train.images),
                       torch.from_numpy(split.train.labels), to_net_input(split.test.images),
                       recipe.replace(seed=s), device)
        rows.append({"n": cell.n, "k": cell.k, "trial": cell.trial, "readout": kind, "seed": s,
                     "test_acc": float((pred.numpy() == split.test.labels).mean()),
                     "seconds": round(time.perf_counter() - t0, 3)})
        if path is not None:
            write_text(path, csv_text(TABLE.fields, rows, ".6f"))
        if progress is not None:
            progress(i + 1, len(todo))
    return rows


def side_by_side(grid_results: list[RunResult], rows: list[dict], kinds) -> list[dict]:
    """Per (n, k): each readout's mean test accuracy over trials (mse: the grid's runs), and the runs."""
    acc: dict[tuple, list[float]] = {}
    for r in grid_results:
        acc.setdefault((r.n, r.k, DEFAULT), []).append(r.test_acc)
    for r in rows:
        acc.setdefault((r["n"], r["k"], r["readout"]), []).append(r["test_acc"])
    kinds = check_readouts(kinds)
    out = []
    for n, k in sorted({(n, k) for n, k, _ in acc}, key=lambda t: (t[1], t[0])):
        row = {"n": n, "k": k}
        for kind in kinds:
            v = acc.get((n, k, kind))
            row[kind] = float(np.mean(v)) if v else float("nan")
            row[f"{kind}_runs"] = len(v or [])
        out.append(row)
    return out


def write_outputs(out_dir, table: list[dict], kinds, title: str = "Readouts side by side") -> None:
    """readouts-summary.csv and readouts.html: mean test accuracy per n and k, a column per readout."""
    kinds = check_readouts(kinds)
    out = Path(out_dir)
    fields = ["n", "k", *kinds, *(f"{k}_runs" for k in kinds)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in table:
        w.writerow([f"{r[f]:.6f}" if isinstance(r[f], float) else r[f] for f in fields])
    write_text(out / SUMMARY, buf.getvalue())
    pct = lambda v: "n/a" if v != v else f"{v:.2%}"
    body = html_table(["n", "k", *kinds, "runs"],
                      [[r["n"], r["k"], *(pct(r[k]) for k in kinds), min(r[f"{k}_runs"] for k in kinds)]
                       for r in table])
    text = ("mean test accuracy over trials on the grid's fixed test characters; mse is the paper's readout "
            "(the grid's runs.csv), the others are in readouts.csv (lenet/core/readouts.py says what each is)")
    write_text(out / REPORT, f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
                             f"</title><style>{CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n"
                             f"<p>{escape(text)}</p>\n{body}\n</body></html>\n")
