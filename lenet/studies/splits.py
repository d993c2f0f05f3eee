"""A study on several class splits, as `reproduce --seeds` runs the grid.

Split (seed) S has its own 20 source characters, source net, 20 new characters (none a twin of a
source character: lenet.data.protocol.default_class_split) and draws. OUT/NAME/seed-S/ is the
study's ordinary folder on that split (resumable); the split's source net is trained once with the
source recipe as `reproduce` trains it (the paper's plain recipe, never the shipped net, which also
learnt drawn copies) and kept in OUT/sources/seed-S/ (not shipped). Then OUT/NAME/splits.csv: each of the
study's cells (its module's ACROSS keys) with every value's mean over the splits (each split's own
mean over its trials), min and max over the splits and 95% interval, splits resampled
(lenet.report.claims.pooled), and OUT/NAME/splits.json (seeds, settings, each split's training time in
seconds: its study folder's, summed over resumes).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

from lenet.core import checkpoint
from lenet.core.net import Net, train_source
from lenet.config import SOURCE_RECIPE
from lenet.data.protocol import default_class_split, new_characters, source_split
from lenet.grid.runfolder import csv_text, read_csv
from lenet.report.claims import pooled

SPLITS, SPLITS_META, SOURCES = "splits.csv", "splits.json", "sources"


def split_source(ds, seed: int, out: Path, log: Callable[[str], None]) -> Net:
    """The source net of split `seed`: OUT/sources/seed-S, trained there once as `reproduce` trains it."""
    classes = default_class_split(ds, seed)[0]
    where = out / SOURCES / f"seed-{seed}"
    if (where / checkpoint.WEIGHTS).exists():
        return checkpoint.load(where)
    log(f"split {seed}: training a source net on {''.join(classes)} (kept in {where})")
    net, _ = train_source(source_split(ds, classes, seed=seed), SOURCE_RECIPE.replace(seed=seed))
    checkpoint.save(net, where)
    return net


def pool(by_seed: dict[int, list[dict]], keys: tuple, values: tuple) -> list[dict]:
    """One row per cell (keys) seen in any split: for each value its mean over the splits that have it,
    min, max and 95% interval (splits resampled), and how many splits."""
    cells: dict[tuple, dict[int, dict]] = {}
    for seed in sorted(by_seed):
        for r in by_seed[seed]:
            cells.setdefault(tuple(r[k] for k in keys), {})[seed] = r
    out = []
    for key, per in cells.items():
        row = dict(zip(keys, key))
        for v in values:
            xs = [float(per[s][v]) for s in sorted(per) if v in per[s] and math.isfinite(float(per[s][v]))]
            m, lo, hi = pooled(xs) if xs else (math.nan,) * 3
            row.update({v: m, f"{v}_min": min(xs) if xs else math.nan, f"{v}_max": max(xs) if xs else math.nan,
                        f"{v}_low": lo, f"{v}_high": hi})
        row["splits"] = len(per)
        out.append(row)
    return out


def fields(mod) -> tuple:
    keys, values = mod.ACROSS
    return (*keys, *[f"{v}{s}" for v in values for s in ("", "_min", "_max", "_low", "_high")], "splits")


def across(mod, by_seed: dict[int, list[dict]], settings=None) -> list[dict]:
    """The study's cross-split rows from each split's summary rows (made with `settings`)."""
    return pool({s: mod.across_rows(rows, settings) for s, rows in by_seed.items()}, *mod.ACROSS)


def run_splits(name: str, seeds: list[int], ds, out, *, quick: bool, preset: str | None = None,
               command: Callable[[int], str], log: Callable[[str], None] | None = None, **kwargs) -> list[dict]:
    """Study `name` on every split in `seeds` (OUT/NAME/seed-S), then its cross-split rows (OUT/NAME/splits.csv)."""
    from lenet import studies
    log = log or (lambda msg: None)
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be integers >= 0 (got {seeds})")
    mod = studies.get(name)
    out = Path(out)
    folder = out / name
    by_seed, seconds, settings = {}, {}, None
    for seed in seeds:
        t0 = time.perf_counter()
        source = split_source(ds, seed, out, log)
        targets = new_characters(ds, source.classes, seed)
        settings = studies.settings(name, seed, quick=quick, preset=preset)
        log(f"{name}, split {seed}: source {''.join(source.classes)}, new {''.join(targets)}")
        rows = studies.run(name, settings, source, ds, targets, out_dir=folder / f"seed-{seed}",
                           command=command(seed), log=log, **kwargs)
        stop = kwargs.get("stop")
        if stop is not None and stop.is_set():
            return []
        by_seed[seed] = rows
        done = folder / f"seed-{seed}" / "meta.json"  # its training time, summed over every resume
        seconds[seed] = json.loads(done.read_text()).get("seconds", 0.0) if done.exists() else \
            round(time.perf_counter() - t0, 1)
    rows = across(mod, by_seed, settings)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SPLITS).write_text(csv_text(fields(mod), rows, floats=".6f"))
    old = json.loads((folder / SPLITS_META).read_text()) if (folder / SPLITS_META).exists() else {}
    meta = {"study": name, "question": mod.QUESTION, "seeds": list(seeds), "quick": quick,
            **({"preset": preset} if preset else {}),
            "data": getattr(ds, "description", ds.source),
            "settings": {k: v for k, v in vars(settings).items() if k != "seed"},
            "seconds": {**old.get("seconds", {}), **{str(s): round(v, 1) for s, v in seconds.items()}},
            "command": command(-1)}
    (folder / SPLITS_META).write_text(json.dumps(meta, indent=2, default=list))
    return rows


def read_splits(folder) -> tuple[dict, list[dict], dict[int, list[dict]]]:
    """(splits.json, splits.csv rows, {seed: summary.csv rows}) of a study's multi-split folder."""
    folder = Path(folder)
    meta = json.loads((folder / SPLITS_META).read_text())
    rows = read_csv(folder / SPLITS)
    per = {int(d.name.split("-", 1)[1]): read_csv(d / "summary.csv")
           for d in sorted(folder.glob("seed-*")) if (d / "summary.csv").exists()}
    return meta, rows, per
