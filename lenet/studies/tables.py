"""The studies' cross-split results as text: the Studies page's shipped tables and the generated block of
docs/studies.md (`python -m lenet tables --write docs/studies.md`), from OUT/NAME/splits.csv
(lenet.studies.splits). Every figure is a mean over the class splits with its 95% interval, splits resampled."""
from __future__ import annotations

import math
from pathlib import Path

from lenet.files import ASSETS

SHIPPED = ASSETS / "results-studies"  # made by: python -m lenet study all --seeds 0 1 2 --data emnist --out ...
SHIPPED_COMMAND = "python -m lenet study all --seeds 0 1 2 --data emnist --out assets/results-studies"
POINTS = ("gain", "vs_random", "vs_whole", "vs_AnB", "vs_none", "source_drop", "spread")  # differences, in points


def interval(row: dict, v: str) -> str:
    """'52.1% [51.1, 53.0]' (an accuracy) or '+3.2 [+1.0, +5.1]' (a difference in points); no interval
    from a single split."""
    m, lo, hi = (row.get(f"{v}{s}", math.nan) for s in ("", "_low", "_high"))
    if not isinstance(m, (int, float)) or not math.isfinite(m):
        return "–"
    if v == "spearman":
        text = f"{m:+.2f}" + (f" [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(lo) else "")
    elif v in POINTS:
        text = f"{100 * m:+.1f}" + (f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if math.isfinite(lo) else "")
    else:
        text = f"{100 * m:.1f}%" + (f" [{100 * lo:.1f}, {100 * hi:.1f}]" if math.isfinite(lo) else "")
    return text


def spread(row: dict, v: str) -> str:
    """min to max over the splits."""
    lo, hi = row.get(f"{v}_min", math.nan), row.get(f"{v}_max", math.nan)
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (lo, hi)):
        return "–"
    scale = 1 if v == "spearman" else 100
    return f"{scale * lo:.2f} to {scale * hi:.2f}" if v == "spearman" else f"{scale * lo:.1f} to {scale * hi:.1f}"


def shipped_rows(mod, rows: list[dict]) -> list[dict]:
    """The cross-split rows as a readable table: the cell, then each value with its 95% interval and its
    range over the splits."""
    keys, values = mod.ACROSS
    out = []
    for r in rows:
        row = {k: r[k] for k in keys}
        for v in values:
            row[f"{v} [95% interval]"] = interval(r, v)
            row[f"{v}, splits min to max"] = spread(r, v)
        row["splits"] = r["splits"]
        out.append(row)
    return out


def have_shipped(name: str, folder: Path = SHIPPED) -> bool:
    return (Path(folder) / name / "splits.csv").exists()
