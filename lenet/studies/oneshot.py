"""Omniglot's one-shot classification benchmark, scored as the dataset's own demo scores it.

20 runs, each 20-way within one evaluation alphabet: one drawing of each of 20 characters to learn
from, 20 other drawings to classify (runNN/class_labels.txt pairs each with its class). The error is
the share of the 400 test drawings given the wrong class (the mean of the 20 runs' errors: each run
has 20). Background knowledge comes only from the source nets (EMNIST, the Omniglot background
alphabets), never from the runs' alphabets.

Baselines: the demo's modified Hausdorff nearest neighbour on the drawings as read (38.8% in the
demo), and the nearest neighbour of the framed 28x28 pixels. This project: every retained level n
of a source net with every readout (lenet.core.readouts).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lenet.config import TRANSFER_RECIPE, Recipe
from lenet.core.readouts import readout
from lenet.data.base import to_net_input
from lenet.data.omniglot import Run
from lenet.ink.hausdorff import modified_hausdorff_matrix, points

DEMO_MHD_ERROR = 38.8  # % error the demo prints for its modified Hausdorff baseline
# Published one-shot errors on these 20 runs (%), and the background each used. "minimal": the 5
# background alphabets of images_background_small1 or small2 (the setting of this project's own
# background nets); "full": all 30 background alphabets (964 characters), which this project lacks.
PUBLISHED = (
    ("people", 4.5, "-", "Lake et al. 2015"),
    ("Bayesian program learning", 3.3, "full", "Lake et al. 2015"),
    ("Bayesian program learning", 4.2, "minimal", "Lake et al. 2019 (Omniglot challenge)"),
    ("siamese convnet", 8.0, "full", "Koch et al. 2015"),
    ("simple convnet", 13.5, "full", "Lake et al. 2015"),
    ("simple convnet", 23.2, "minimal", "Lake et al. 2019"),
    ("prototypical net", 13.7, "full", "Lake et al. 2019"),
    ("prototypical net", 30.1, "minimal", "Lake et al. 2019"),
    ("hierarchical deep model", 34.8, "full", "Lake et al. 2015"),
    ("modified Hausdorff NN", DEMO_MHD_ERROR, "none", "the dataset's demo"),
)


def error(runs: list[Run], predictions: list[np.ndarray]) -> tuple[float, list[float]]:
    """(% error over all test drawings, % error per run) of predicted class indexes per run."""
    per_run = [100.0 * float(np.mean(np.asarray(p) != r.answers)) for r, p in zip(runs, predictions)]
    wrong = sum(int(np.sum(np.asarray(p) != r.answers)) for r, p in zip(runs, predictions))
    return 100.0 * wrong / sum(len(r.answers) for r in runs), per_run


def wilson(errors: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (%) of an error rate of errors / n: the 400 drawings are one sample."""
    p = errors / n
    shrink = 1 + z * z / n
    centre, half = (p + z * z / (2 * n)) / shrink, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / shrink
    return 100.0 * (centre - half), 100.0 * (centre + half)


def mhd_predict(run: Run) -> np.ndarray:
    """Each test drawing's class: the training drawing at the least modified Hausdorff distance."""
    d = modified_hausdorff_matrix([points(i) for i in run.test_ink], [points(i) for i in run.train_ink])
    return d.argmin(1)  # the first of equals, as the demo's argmin


def pixels_predict(run: Run) -> np.ndarray:
    """Nearest neighbour of the framed 28x28 images (Euclidean)."""
    a, b = run.test.reshape(len(run.test), -1).astype(np.float64), run.train.reshape(len(run.train), -1)
    return ((a[:, None, :] - b[None].astype(np.float64)) ** 2).sum(-1).argmin(1)


def net_predict(run: Run, model, n: int, kind: str, recipe: Recipe, device=None) -> np.ndarray:
    x, xt = to_net_input(run.train), to_net_input(run.test)
    return readout(kind, model, n, x, torch.arange(len(run.train)), xt, recipe, device).numpy()


def oneshot(runs: list[Run], sources: dict, levels=(0, 1, 2, 3, 4, 5), readouts=("mse", "ce", "centroid", "probe"),
            recipe: Recipe = TRANSFER_RECIPE, baselines: bool = True, device=None,
            progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """One row per configuration: method, source, n, readout, error (%), per-run errors, seconds.
    `sources`: name -> LeNet5 (a source net's model); run i's trained readouts use recipe seed i."""
    jobs: list[tuple[dict, Callable[[int, Run], np.ndarray]]] = []
    if baselines:
        jobs += [({"method": "modified Hausdorff NN", "source": "-", "n": None, "readout": "-"},
                  lambda i, r: mhd_predict(r)),
                 ({"method": "pixel NN (28x28)", "source": "-", "n": None, "readout": "-"},
                  lambda i, r: pixels_predict(r))]
    for name, model in sources.items():
        for n in levels:
            for kind in readouts:
                jobs.append(({"method": "LeNet-5", "source": name, "n": n, "readout": kind},
                             lambda i, r, m=model, n=n, k=kind: net_predict(r, m, n, k, recipe.replace(seed=i), device)))
    rows, total = [], len(jobs) * len(runs)
    for j, (row, predict) in enumerate(jobs):
        t0, preds = time.perf_counter(), []
        for i, run in enumerate(runs):
            preds.append(predict(i, run))
            if progress is not None:
                progress(j * len(runs) + i + 1, total)
        err, per_run = error(runs, preds)
        n_test = sum(len(r.answers) for r in runs)
        lo, hi = wilson(round(err * n_test / 100), n_test)
        rows.append({**row, "error": round(err, 2), "ci95": [round(lo, 1), round(hi, 1)],
                     "per_run": [round(e, 1) for e in per_run],
                     "seconds": round(time.perf_counter() - t0, 2)})
    return rows


SHIPPED_RESULT = "assets/results-oneshot/oneshot.json"  # `bench oneshot --json`'s output, as it ships


def default_sources() -> dict[str, str]:
    """The shipped source nets whose background is allowed: EMNIST's, the Omniglot background one, and the
    one trained on both together."""
    from lenet.core import checkpoint
    return {name: str(path) for name in ("emnist", "omniglot", "emnist+omniglot")
            if (path := checkpoint.shipped(name)) is not None}


def main(argv=None) -> int:
    """`python -m lenet bench oneshot [--json] [--quick] ...`: the table of every configuration's error."""
    import argparse
    import json
    import sys

    from lenet.core import checkpoint
    from lenet.core.readouts import READOUTS, check_readouts
    from lenet.core.transfer import check_levels
    from lenet.data.omniglot import load_runs

    p = argparse.ArgumentParser(prog="python -m lenet bench oneshot", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--quick", action="store_true",
                   help="runs 1-4, n = 4 and 5, the centroid and mse readouts (mse capped at 20 epochs)")
    p.add_argument("--source", action="append", metavar="NAME=PATH",
                   help="a source net to read out (repeatable; default: the shipped emnist, omniglot and "
                        "emnist+omniglot ones)")
    p.add_argument("--levels", type=int, nargs="+", help="retained levels n (default: 0..5)")
    p.add_argument("--readouts", help=f"comma-separated, some of {','.join(READOUTS)} (default: all)")
    p.add_argument("--data-dir", help="folder or all_runs.zip (default: $LENET_OMNIGLOT_DIR, then assets/omniglot)")
    p.add_argument("--device", default=None, help="where the mse readout trains (default: $LENET_DEVICE or auto)")
    args = p.parse_args(argv)
    levels = [check_levels(n) for n in (args.levels or ((4, 5) if args.quick else (0, 1, 2, 3, 4, 5)))]
    kinds = check_readouts(args.readouts.split(",") if args.readouts else
                           (("centroid", "mse") if args.quick else READOUTS))
    pairs = [s.split("=", 1) for s in args.source] if args.source else list(default_sources().items())
    if any(len(s) != 2 for s in pairs):
        raise ValueError("--source takes NAME=PATH")
    sources = {name: checkpoint.load(path).model for name, path in pairs}
    runs = load_runs(args.data_dir)
    recipe = TRANSFER_RECIPE.replace(max_epochs=20) if args.quick else TRANSFER_RECIPE
    if args.quick:
        runs = runs[:4]

    def progress(done, total):
        if not args.json and (done == total or done % 20 == 0):
            print(f"  {done}/{total} run scorings", file=sys.stderr, flush=True)

    rows = oneshot(runs, sources, levels, kinds, recipe, progress=progress)
    n_test = sum(len(r.answers) for r in runs)
    best = min((r for r in rows if r["method"] == "LeNet-5"), key=lambda r: r["error"], default=None)
    from lenet.files import PROJECT_ROOT
    # the shipped nets by their place in the project, not by this machine's path
    shown = {name: str(p.relative_to(PROJECT_ROOT)) if (p := Path(path).resolve()).is_relative_to(PROJECT_ROOT)
             else str(path) for name, path in pairs}
    out = {"runs": len(runs), "test_drawings": n_test, "quick": args.quick, "sources": shown, "rows": rows,
           "best": best, "demo_mhd_error": DEMO_MHD_ERROR,
           "published": [dict(zip(("method", "error", "background", "reference"), p)) for p in PUBLISHED]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"one-shot classification, {len(runs)} runs x 20-way, error over {n_test} test drawings")
    print(f"  {'method':<22} {'source':<9} {'n':>2} {'readout':<9} {'error':>7}  (Wilson interval over the drawings)")
    for r in rows:
        print(f"  {r['method']:<22} {r['source']:<9} {'' if r['n'] is None else r['n']:>2} {r['readout']:<9} "
              f"{r['error']:6.2f}%  (95% {r['ci95'][0]:.1f}-{r['ci95'][1]:.1f})")
    print("published, on the same 20 runs (background: minimal = 5 alphabets, full = 30):")
    for method, err, background, ref in PUBLISHED:
        print(f"  {method:<26} {err:5.1f}%  {background:<8} {ref}")
    return 0
