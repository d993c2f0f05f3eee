"""The paper's experiment: every (retained levels n, samples per class k, trial) cell, resumably.

A cell trains one target net: the source net's bottom n levels frozen, the rest learned
from k samples of each target character, scored on the same 1,000 test characters.
With an out_dir, the grid is a run folder (lenet.grid.runfolder): every finished run is in
`runs.csv` the moment it ends, so a crash or kill loses at most the run in progress and a
rerun goes on from there, and a rerun with other settings is refused rather than mixing two
grids in one table.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from lenet.files import write_text
from lenet.config import PAPER_SOURCE_ACCURACY, TRANSFER_RECIPE, Recipe
from lenet.data import CharacterSet, DataError
from lenet.data.protocol import VAL_PER_CLASS, check_classes
from lenet.grid.fast import run_cells
from lenet.grid.cells import FIELDS, TEST_PER_CLASS, Cell, RunResult, grid, run_cell, run_seed
from lenet.grid.runfolder import META, REPORT, REPRODUCTION, RUNS, SUMMARY, RunFolder, RunsFileError, Table, csv_text, \
    read_csv, read_rows
from lenet.core.net import Net
from lenet.core.transfer import check_levels

SEEDS, CLAIMS, MARGINS = "seeds.csv", "claims.csv", "margins.csv"  # several class splits: OUT/seed-S/ each,
                                                                    # and these across them
FORMAT = "lenet-transfer-lab/reproduction/1"


RUNS_TABLE = Table(key=("n", "k", "trial"), result=FIELDS[3:],
                   types={f: (bool if f == "capped" else int if f in ("n", "k", "trial", "seed", "epochs", "steps")
                              else float) for f in FIELDS},
                   missing=("val_acc",))  # runs.csv: one row per RunResult


def by_split(results: list[RunResult]) -> dict[int, list[RunResult]]:
    """Runs of several class splits, grouped by their split's seed (the inverse of run_seed)."""
    out: dict[int, list[RunResult]] = {}
    for r in results:
        out.setdefault((r.seed - r.trial) // 1000, []).append(r)
    return out


def summarize(results: list[RunResult]) -> list[dict]:
    """Mean, min and max test accuracy over the trials of each (n, k), sorted by k then n;
    `val` is the mean validation accuracy (what recipes are compared on), `train` the mean
    training accuracy, `capped` how many runs ended at the budget without fitting their set."""
    groups: dict[tuple[int, int], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.n, r.k), []).append(r)
    out = []
    for (n, k), rs in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        a = [r.test_acc for r in rs]
        out.append({"n": n, "k": k, "mean": float(np.mean(a)), "min": float(min(a)), "max": float(max(a)),
                    "runs": len(a), "val": float(np.mean([r.val_acc for r in rs])),
                    "train": float(np.mean([r.train_acc for r in rs])), "capped": sum(r.capped for r in rs)})
    return out


def across_seeds(by_seed: dict[int, list[RunResult]]) -> list[dict]:
    """Per (n, k): the mean over class splits (seeds) of each split's mean test accuracy, its standard
    deviation, range and 95% interval (splits resampled, lenet.report.claims) across the splits, the number
    of splits and runs, and how many runs ended at the budget (capped) or below 100% training accuracy."""
    from lenet.report.claims import cell_interval

    means: dict[tuple[int, int], list[float]] = {}
    runs: dict[tuple[int, int], list[RunResult]] = {}
    for results in by_seed.values():
        for r in summarize(results):
            means.setdefault((r["n"], r["k"]), []).append(r["mean"])
        for r in results:
            runs.setdefault((r.n, r.k), []).append(r)
    out = []
    for (n, k), a in sorted(means.items(), key=lambda item: (item[0][1], item[0][0])):
        lo, hi = cell_interval(a)
        rs = runs[n, k]
        out.append({"n": n, "k": k, "mean": float(np.mean(a)), "sd": float(np.std(a, ddof=1)) if len(a) > 1 else 0.0,
                    "lo": float(min(a)), "hi": float(max(a)), "ci_lo": lo, "ci_hi": hi, "seeds": len(a),
                    "runs": len(rs), "capped": sum(r.capped for r in rs),
                    "unfitted": sum(r.train_acc < 1 for r in rs)})
    return out


def seed_dir(out_dir, seed: int) -> Path:
    return Path(out_dir) / f"seed-{seed}"


def read_grid(folder) -> tuple[dict, list[RunResult]]:
    """(meta, finished runs) of a grid folder written by reproduce; its meta.json says which grid."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
        settings = meta["settings"]
        cells = grid(settings["levels"], settings["samples"], settings["trials"])
        seed = settings["seed"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise RunsFileError(f"{folder / META}: not a reproduction's meta.json") from None
    return meta, (read_runs(folder / RUNS, cells, seed) if (folder / RUNS).exists() else [])


def read_splits(folder) -> dict[int, tuple[dict, list[RunResult]]]:
    """{seed: (meta, runs)} of a grid folder (one class split) or of a folder of OUT/seed-S grids."""
    folder = Path(folder)
    if (folder / META).exists():
        meta, runs = read_grid(folder)
        return {meta["settings"]["seed"]: (meta, runs)}
    out = {}
    for d in sorted(folder.glob("seed-*"), key=lambda d: d.name):
        if (d / META).exists():
            meta, runs = read_grid(d)
            out[meta["settings"]["seed"]] = (meta, runs)
    return out


def write_seed_outputs(out_dir, by_seed: dict[int, list[RunResult]]) -> tuple[list[dict], list[dict]]:
    """seeds.csv (across_seeds), claims.csv (each claim per seed and pooled, lenet.report.claims.check_splits)
    and margins.csv (transfer margin over n = 0 per k, lenet.report.claims.margins) in out_dir."""
    from lenet.report.claims import check_splits, margins

    rows = across_seeds(by_seed)
    cols = ("n", "k", "mean", "sd", "lo", "hi", "ci_lo", "ci_hi", "seeds", "runs", "capped", "unfitted")
    claims = check_splits(by_seed)
    marg = margins(by_seed) + margins(by_seed, 5)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_text(Path(out_dir) / SEEDS, csv_text(cols, rows, ".6f"))
    write_text(Path(out_dir) / CLAIMS, csv_text(("seed", "claim", "statistic", "lo", "hi", "verdict", "chosen"), claims,
                                                ".6f"))
    write_text(Path(out_dir) / MARGINS, csv_text(("k", "n", "margin", "lo", "hi", "splits"), marg, ".6f"))
    return rows, claims


def read_seed_outputs(folder) -> dict[str, list[dict]]:
    """{"seeds", "claims", "margins"}: the rows of a multi-split folder's CSVs, numbers parsed."""
    return {key: read_csv(Path(folder) / name) for key, name in (("seeds", SEEDS), ("claims", CLAIMS),
                                                                  ("margins", MARGINS))}


# --- the protocol per data set ----------------------------------------------------------------

def _is_omniglot(data) -> bool:
    """data: a --data kind or a CharacterSet (Omniglot's background sets are named omniglot-...)."""
    return (data if isinstance(data, str) else data.source.split("-")[0]) == "omniglot"


def grid_protocol(data) -> dict:
    """The grid's default samples per class k and its test and validation sizes for a data kind or set:
    the paper's k with 50 test and 20 validation samples, or on Omniglot's 20 drawers OMNIGLOT_* (lenet/config.py)."""
    from lenet import config
    if _is_omniglot(data):
        return {"samples": config.OMNIGLOT_SAMPLES, "test_per_class": config.OMNIGLOT_TEST_PER_CLASS,
                "val_per_class": config.OMNIGLOT_VAL_PER_CLASS}
    return {"samples": config.PAPER_SAMPLES, "test_per_class": TEST_PER_CLASS, "val_per_class": VAL_PER_CLASS}


def grid_targets(ds: CharacterSet, source_classes, seed: int, twins: str = "avoid") -> tuple[list[str], str]:
    """A class split's new characters and a note on where they come from: on Omniglot 20 characters of one
    alphabet (lenet.data.omniglot.alphabet_characters; the note names it), else the seed's default pick."""
    from lenet.data.protocol import new_characters
    if _is_omniglot(ds):
        from lenet.data.omniglot import alphabet_characters
        alphabet, chars = alphabet_characters(ds, source_classes, seed)
        return chars, f" (the {alphabet} alphabet)"
    return new_characters(ds, source_classes, seed, twins=twins), ""


# --- checks before anything runs -------------------------------------------------------------

def check_grid(levels, samples, trials) -> tuple[list[int], list[int], int]:
    """Validated, de-duplicated (levels, samples, trials) of the paper's protocol."""
    levels, samples = list(dict.fromkeys(levels)), list(dict.fromkeys(samples))
    if not levels or not samples:
        raise ValueError("need at least one retained level n and one samples-per-class k")
    for n in levels:
        check_levels(n)
    for k in samples:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"samples per class k must be an integer >= 1 (got {k!r})")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1 (got {trials!r})")
    return levels, samples, trials


def check_targets(ds: CharacterSet, target_classes, source_classes, max_k: int, test_per_class: int = TEST_PER_CLASS,
                  val_per_class: int = VAL_PER_CLASS) -> list[str]:
    """Target characters known to ds, disjoint from the source's, each with max_k + validation + test samples."""
    if test_per_class < 1 or val_per_class < 0:
        raise DataError(f"need at least 1 test and 0 validation samples per class (got {test_per_class} test, "
                        f"{val_per_class} validation)")
    chars = list(target_classes)
    check_classes(ds, chars, "target classes")
    overlap = [c for c in chars if c in set(source_classes)]
    if overlap:
        raise DataError(f"target classes overlap the source net's classes: {''.join(overlap)!r}")
    counts = ds.counts()
    short = [f"{c!r} has {counts[c]}" for c in chars if counts[c] < max_k + test_per_class + val_per_class]
    if short:
        raise DataError(f"k = {max_k} needs {max_k} + {val_per_class} validation + {test_per_class} test samples "
                        f"per target class, but "
                        f"{', '.join(short[:5])}{' ...' if len(short) > 5 else ''} in {ds.source}")
    return chars


def source_fingerprint(source: Net) -> str:
    """sha256 of the source net's weights, codes and classes: which net the runs transferred from."""
    h = hashlib.sha256()
    for key, t in sorted(source.model.state_dict().items()):
        h.update(key.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    h.update(source.codes.contiguous().numpy().tobytes())
    h.update("".join(source.classes).encode())
    return h.hexdigest()


def settings_of(source: Net, ds: CharacterSet, target_classes, levels, samples, trials, seed, recipe,
                test_per_class: int = TEST_PER_CLASS, val_per_class: int = VAL_PER_CLASS) -> dict:
    """Everything that decides the runs' results; two reproductions agree on these or are not mixed."""
    return {"data": ds.source, "data_size": len(ds), "seed": seed, "source_classes": list(source.classes),
            "target_classes": list(target_classes), "source_sha256": source_fingerprint(source),
            "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"},  # run_seed replaces it
            "levels": list(levels), "samples": list(samples), "trials": trials,
            "test_per_class": test_per_class, "val_per_class": val_per_class}


# --- files ----------------------------------------------------------------------------------

def runs_csv(results: list[RunResult]) -> str:
    return csv_text(FIELDS, [asdict(r) for r in results])


def read_runs(path: Path, cells: list[Cell], seed: int) -> list[RunResult]:
    """Finished runs from runs.csv, every value checked; anything odd is a RunsFileError."""
    def check(row: dict) -> str | None:
        cell = Cell(row["n"], row["k"], row["trial"])
        if row["seed"] != run_seed(seed, cell):
            return f"seed {row['seed']} is not this reproduction's seed {run_seed(seed, cell)}"
        if not all(0 <= row[a] <= 1 for a in ("train_acc", "test_acc")) or \
                not (math.isnan(row["val_acc"]) or 0 <= row["val_acc"] <= 1):
            return "accuracies must be fractions in [0, 1]"
        if row["epochs"] < 1 or row["steps"] < 0 or row["seconds"] < 0:
            return "epochs must be >= 1, steps and seconds >= 0"
        return None
    rows = read_rows(path, RUNS_TABLE, {(c.n, c.k, c.trial) for c in cells}, check)
    return [RunResult(**row) for row in rows]


def summary_csv(summary: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("n", "k", "mean", "min", "max", "runs", "val"))
    for s in summary:
        w.writerow((s["n"], s["k"], f"{s['mean']:.6f}", f"{s['min']:.6f}", f"{s['max']:.6f}", s["runs"],
                    f"{s['val']:.6f}"))
    return buf.getvalue()


def write_outputs(out_dir, results: list[RunResult], meta: dict) -> None:
    """runs.csv, summary.csv, report.html and meta.json, each replaced atomically."""
    from lenet.report.html import report_html  # plotly is only needed here

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    write_text(out / RUNS, runs_csv(results))
    write_text(out / SUMMARY, summary_csv(summary))
    write_text(out / REPORT, report_html(summary, [asdict(r) for r in results], meta))
    write_text(out / META, json.dumps(meta, indent=2))


# --- the experiment -------------------------------------------------------------------------

def reproduce(source: Net, ds: CharacterSet, target_classes, *, levels=(0, 1, 2, 3, 4, 5),
              samples=(1, 5, 10, 20, 40), trials: int = 5, seed: int = 0, recipe: Recipe = TRANSFER_RECIPE,
              out_dir=None, fast: bool = True, on_result: Callable[[RunResult], None] | None = None,
              stop: threading.Event | None = None, progress: Callable[[int, int], None] | None = None,
              log: Callable[[str], None] | None = None, device=None, ray_address: str | None = None,
              test_per_class: int = TEST_PER_CLASS, val_per_class: int = VAL_PER_CLASS) -> list[RunResult]:
    """Run every cell of the grid not already in out_dir/runs.csv; finished runs in grid order.

    `stop` ends the reproduction between runs (a run in progress stops within a second and is
    dropped); `progress(done, total)` counts cells including those finished earlier.
    `device` (lenet.device) and `ray_address` (lenet.grid.fast.run_cells) choose where runs train.
    `test_per_class` and `val_per_class` size the fixed test set and each trial's validation set (the
    paper's 50 and this project's 20 on EMNIST; Omniglot's 20 drawers need fewer: lenet/config.py).
    """
    log = log or (lambda msg: None)
    levels, samples, trials = check_grid(levels, samples, trials)
    recipe = recipe.validate()
    target_classes = check_targets(ds, target_classes, source.classes, max(samples), test_per_class, val_per_class)
    cells = grid(levels, samples, trials)
    sizes = dict(test_per_class=test_per_class, val_per_class=val_per_class)
    settings = settings_of(source, ds, target_classes, levels, samples, trials, seed, recipe, **sizes)
    with RunFolder(out_dir, REPRODUCTION, settings) as folder:
        out = folder.out
        done = read_runs(out / RUNS, cells, seed) if out is not None and (out / RUNS).exists() else []
        meta = _meta(source, ds, settings)
        meta["seconds"] = folder.old.get("seconds", 0.0)
        folder.write(META, json.dumps(meta, indent=2))  # settings on disk before any run
        finished = {r.cell for r in done}
        todo = [c for c in cells if c not in finished]
        t0 = time.perf_counter()
        write_lock = threading.Lock()
        total = len(cells)
        if progress:
            progress(len(done), total)
        if done:
            log(f"resuming: {len(done)} of {len(cells)} runs already in {out / RUNS}")

        def record(r: RunResult) -> None:
            if r.stopped:
                return
            with write_lock:  # a fast runner may report from several threads
                done.append(r)
                folder.write(RUNS, runs_csv(done))
                if on_result:
                    on_result(r)
                if progress:
                    progress(len(done), total)

        meta["engine"] = "fast" if fast else "plain"
        if fast and todo:
            run_cells(source, ds, target_classes, todo, recipe, seed, on_result=record, stop=stop, device=device,
                      ray_address=ray_address, **sizes)
        else:
            for cell in todo:
                if stop is not None and stop.is_set():
                    break
                record(run_cell(source, ds, target_classes, cell, recipe, seed, stop=stop, device=device, **sizes))
        order = {c: i for i, c in enumerate(cells)}
        results = sorted(done, key=lambda r: order[r.cell])
        meta.update(complete=len(results) == len(cells), runs=len(results),
                    seconds=round(meta["seconds"] + time.perf_counter() - t0, 3),
                    run_seconds=round(sum(r.seconds for r in results), 3), finished=time.time())
        if out is not None:
            write_outputs(out, done, meta)  # runs.csv keeps finishing order: earlier rows never move
        return results


def _meta(source: Net, ds: CharacterSet, settings: dict) -> dict:
    return {"format": FORMAT, "settings": settings, "data": ds.source, "data_description": ds.description,
            "seed": settings["seed"], "source_classes": settings["source_classes"],
            "target_classes": settings["target_classes"], "recipe": settings["recipe"],
            "source_accuracy": {"train": source.meta.get("train_acc"), "heldout": source.meta.get("heldout_acc")},
            "source_data": source.meta.get("data"), "paper_source_accuracy": PAPER_SOURCE_ACCURACY,
            "engine": None, "complete": False, "runs": 0, "seconds": 0.0, "started": time.time()}
