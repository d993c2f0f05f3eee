"""Readouts beside the paper's in the grid: `reproduce --readouts mse,ce,centroid,probe`.

The grid's own runs are the paper's readout (mse) and keep runs.csv exactly as before. Every other
readout (lenet.core.readouts) runs on the very same cells: the same training samples (transfer_split
with the grid's seed and trial), the same fixed test characters, the same run seed. Its runs go to
readouts.csv (n, k, trial, readout, seed, test_acc, seconds; resumable like runs.csv), and
readouts.csv's side-by-side table (mean test accuracy per n and k, a column per readout) to
readouts-summary.csv, readouts.html and a section of report.html. Over several class splits
(`--seeds`), readouts-seeds.csv holds each readout's mean over the splits with its 95% interval
(the splits resampled, as seeds.csv), readouts-margins.csv each readout's margin over the paper's (paired
within each split: the same cells), and the folder's readouts.html that table side by side.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from lenet.config import TRANSFER_RECIPE, Recipe
from lenet.core.net import Net
from lenet.core.readouts import DEFAULT, READOUTS, check_readouts, readout
from lenet.data import CharacterSet, to_net_input
from lenet.data.protocol import VAL_PER_CLASS, transfer_split
from lenet.files import write_text
from lenet.grid.cells import TEST_PER_CLASS, Cell, RunResult, run_seed
from lenet.grid.runfolder import Table, csv_text, read_rows
from lenet.report.html import CSS, escape, html_table

CSV, SUMMARY, REPORT, SEEDS = "readouts.csv", "readouts-summary.csv", "readouts.html", "readouts-seeds.csv"
MARGINS = "readouts-margins.csv"  # each readout minus the paper's, paired within each split


TABLE = Table(key=("n", "k", "trial", "readout"), result=("seed", "test_acc", "seconds"),
              types=dict(n=int, k=int, trial=int, readout=str, seed=int, test_acc=float, seconds=float))


def read_readouts(path: Path) -> list[dict]:
    """Finished readout runs from readouts.csv ([] when there is none); a damaged file is a RunsFileError."""
    if not path.exists():
        return []
    return read_rows(path, TABLE, check=lambda r: None if r["readout"] in READOUTS else f"unknown readout {r['readout']!r}")


def run_readouts(source: Net, ds: CharacterSet, target_classes, cells: list[Cell], kinds, *, seed: int = 0,
                 recipe: Recipe = TRANSFER_RECIPE, out_dir=None, stop=None, progress=None, device=None,
                 test_per_class: int = TEST_PER_CLASS, val_per_class: int = VAL_PER_CLASS) -> list[dict]:
    """Every (cell, readout) not already in out_dir/readouts.csv, mse excepted (the grid's own runs); the
    test and validation sizes must be the grid's, so the samples and test characters are its own."""
    kinds = [k for k in check_readouts(kinds) if k != DEFAULT]
    path = Path(out_dir) / CSV if out_dir is not None else None
    rows = read_readouts(path) if path is not None else []
    done = {(r["n"], r["k"], r["trial"], r["readout"]) for r in rows}
    todo = [(c, kind) for c in cells for kind in kinds if (c.n, c.k, c.trial, kind) not in done]
    for i, (cell, kind) in enumerate(todo):
        if stop is not None and stop.is_set():
            break
        t0 = time.perf_counter()
        split = transfer_split(ds, target_classes, cell.k, cell.trial, seed, test_per_class,
                               source_classes=source.classes, val_per_class=val_per_class)
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


_TEXT = ("mean test accuracy over trials on the grid's fixed test characters; mse is the paper's readout "
         "(the grid's runs.csv), the others are in readouts.csv (lenet/core/readouts.py says what each is)")


def _pct(v: float) -> str:
    return "n/a" if v != v else f"{v:.2%}"


def section(table: list[dict], kinds) -> str:
    """The side-by-side table as an HTML section (readouts.html, and report.html's "Readouts")."""
    kinds = check_readouts(kinds)
    body = html_table(["n", "k", *kinds, "runs"],
                      [[r["n"], r["k"], *(_pct(r[k]) for k in kinds), min(r[f"{k}_runs"] for k in kinds)]
                       for r in table])
    return f"<h2>Readouts side by side</h2>\n<p>{escape(_TEXT)}</p>\n{body}"


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
            f"</title><style>{CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n")


def write_outputs(out_dir, table: list[dict], kinds, title: str = "Readouts side by side", grid=None) -> None:
    """readouts-summary.csv and readouts.html: mean test accuracy per n and k, a column per readout; with
    grid = (the grid's results, its meta), report.html again with that table as a section."""
    kinds = check_readouts(kinds)
    out = Path(out_dir)
    fields = ["n", "k", *kinds, *(f"{k}_runs" for k in kinds)]
    write_text(out / SUMMARY, csv_text(fields, table, ".6f"))
    write_text(out / REPORT, _page(title, section(table, kinds)))
    if grid is not None:
        from dataclasses import asdict

        from lenet.grid.experiment import REPORT as GRID_REPORT, summarize
        from lenet.report.html import report_html
        results, meta = grid
        write_text(out / GRID_REPORT, report_html(summarize(results), [asdict(r) for r in results], meta,
                                                  extra=section(table, kinds)))


def across_seeds(tables: dict[int, list[dict]], kinds) -> list[dict]:
    """Per (n, k, readout): the mean over class splits of each split's mean test accuracy, its 95%
    interval with the splits resampled (lenet.report.claims.cell_interval) and the number of splits."""
    from lenet.report.claims import cell_interval

    kinds = check_readouts(kinds)
    means: dict[tuple, list[float]] = {}
    for table in tables.values():
        for r in table:
            for kind in kinds:
                if r[f"{kind}_runs"]:
                    means.setdefault((r["n"], r["k"], kind), []).append(r[kind])
    out = []
    for (n, k, kind), a in sorted(means.items(), key=lambda t: (t[0][1], t[0][0], kinds.index(t[0][2]))):
        lo, hi = cell_interval(a)
        out.append({"n": n, "k": k, "readout": kind, "mean": float(np.mean(a)), "ci_lo": lo, "ci_hi": hi,
                    "seeds": len(a)})
    return out


def margins(tables: dict[int, list[dict]], kinds) -> list[dict]:
    """Per (n, k) and readout other than mse: its mean test accuracy minus mse's, per split (the same
    cells, trials and test characters: paired), pooled over the splits with a 95% interval (splits
    resampled, lenet.report.claims.pooled)."""
    from lenet.report.claims import pooled

    kinds = [k for k in check_readouts(kinds) if k != DEFAULT]
    diffs: dict[tuple, list[float]] = {}
    for table in tables.values():
        for r in table:
            for kind in kinds:
                if r[f"{kind}_runs"] and r[f"{DEFAULT}_runs"]:
                    diffs.setdefault((r["n"], r["k"], kind), []).append(r[kind] - r[DEFAULT])
    out = []
    for (n, k, kind), d in sorted(diffs.items(), key=lambda t: (t[0][1], t[0][0], kinds.index(t[0][2]))):
        m, lo, hi = pooled(d)
        out.append({"n": n, "k": k, "readout": kind, "margin": m, "lo": lo, "hi": hi, "splits": len(d)})
    return out


def write_seed_outputs(out_dir, tables: dict[int, list[dict]], kinds) -> list[dict]:
    """readouts-seeds.csv (across_seeds) and readouts.html (mean [95% interval] per n and k, a column per
    readout) in out_dir, the folder of several class splits."""
    kinds = check_readouts(kinds)
    rows = across_seeds(tables, kinds)
    out = Path(out_dir)
    write_text(out / SEEDS, csv_text(("n", "k", "readout", "mean", "ci_lo", "ci_hi", "seeds"), rows, ".6f"))
    if DEFAULT in kinds:
        write_text(out / MARGINS, csv_text(("n", "k", "readout", "margin", "lo", "hi", "splits"),
                                           margins(tables, kinds), ".6f"))
    at = {(r["n"], r["k"], r["readout"]): r for r in rows}
    cell = lambda r: "n/a" if r is None else f"{r['mean']:.1%} [{r['ci_lo']:.1%}, {r['ci_hi']:.1%}]"
    nks = sorted({(r["n"], r["k"]) for r in rows}, key=lambda t: (t[1], t[0]))
    body = html_table(["n", "k", *kinds], [[n, k, *(cell(at.get((n, k, kind))) for kind in kinds)] for n, k in nks])
    text = (f"mean test accuracy over {len(tables)} class splits (each split's mean over its trials), 95% interval "
            "with the splits resampled; mse is the paper's readout (lenet/core/readouts.py says what each is)")
    write_text(out / REPORT, _page("Readouts side by side, across class splits", f"<p>{escape(text)}</p>\n{body}"))
    return rows
