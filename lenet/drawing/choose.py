"""`python -m lenet bench drawn-mix`: choose the source net's drawn copies on validation characters.

Each candidate (`CANDIDATES`: how many drawn copies, with or without distortion) trains a source
net with `SOURCE_RECIPE` on the paper's 20 x 400 scanned characters plus its drawn copies, and is
scored on the source task's VALIDATION characters (`protocol.source_val`: beyond the training and
held-out draws, so the held-out set that `bench drawn` reports stays unseen): as scanned, and drawn
with every pen and size of `bench drawn`. The rule: the best mean drawn accuracy among candidates
whose scanned validation accuracy is within 1 point of the plain net's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

from lenet.config import SOURCE_RECIPE, DrawnCopies
from lenet.core.net import train_source
from lenet.data import CharacterSet, find_emnist, load
from lenet.data.protocol import default_class_split, source_split, source_val
from lenet.drawing import drawn
from lenet.drawing.augment import drawn_copies
from lenet.drawing.canvas import trajectory_to_image

BASE = DrawnCopies()
STILL = replace(BASE, rotation=0.0, shear=0.0, scale=(1.0, 1.0), elastic_alpha=0.0)
CANDIDATES = {
    "plain": replace(BASE, copies=0.0),
    "drawn-0.5": replace(BASE, copies=0.5),
    "drawn-1": replace(BASE, copies=1.0),
    "drawn-1-undistorted": replace(STILL, copies=1.0),
    "drawn-2": replace(BASE, copies=2.0),
}


def drawn_set(chars: CharacterSet, pens, sizes, seed: int = 0) -> dict[str, np.ndarray]:
    """{"pen px/size": the characters drawn on the canvas with that pen and size, read back from the pen's
    trajectory as the Draw page reads them}, drawn as bench drawn draws them."""
    skeletons = [drawn.skeleton(im) for im in chars.images]
    out = {}
    for pen in pens:
        for size in sizes:
            rng = np.random.default_rng([seed, pen, round(size * 100)])
            paths = [drawn.draw(s, pen, size, rng, trajectory=True)[1] for s in skeletons]
            out[f"{pen}px/{size:.0%}"] = np.stack([trajectory_to_image(p) for p in paths])
    return out


def run(ds: CharacterSet, candidates: dict[str, DrawnCopies], seed: int = 0, val_per_class: int = 40,
        pens=drawn.PENS, sizes=drawn.SIZES, say=print) -> list[dict]:
    classes = default_class_split(ds, seed)[0]
    split = source_split(ds, classes, seed=seed)
    val = source_val(ds, classes, seed=seed, val_per_class=val_per_class)
    say(f"{len(classes)} source characters {''.join(classes)}; {len(val)} validation characters")
    t0 = time.perf_counter()
    val_drawn = drawn_set(val, pens, sizes, seed)
    say(f"validation characters drawn with {len(pens)} pens x {len(sizes)} sizes ({time.perf_counter() - t0:.0f} s)")
    rows = []
    for name, cfg in candidates.items():
        t0 = time.perf_counter()
        extra = drawn_copies(split.train, cfg, seed) if cfg.copies > 0 else None
        made = time.perf_counter() - t0
        net, fit = train_source(split, SOURCE_RECIPE.replace(seed=seed), extra=extra, extra_meta=cfg.to_dict())
        truth = np.array(classes)[val.labels]
        cells = {k: float(np.mean(np.array(net.predict(v)) == truth)) for k, v in val_drawn.items()}
        scanned = float(np.mean(np.array(net.predict(val.images)) == truth))
        row = {"candidate": name, **cfg.to_dict(), "val_scanned": scanned,
               "val_drawn_mean": float(np.mean(list(cells.values()))), "val_drawn_worst": min(cells.values()),
               "train_acc": fit.train_acc, "epochs": fit.epochs, "copies_seconds": round(made, 1),
               "train_seconds": round(fit.seconds, 1), "cells": cells}
        say(f"{name}: scanned {row['val_scanned']:.1%}, drawn mean {row['val_drawn_mean']:.1%} "
            f"(worst {row['val_drawn_worst']:.1%}), {fit.epochs} epochs, copies {made:.0f} s, "
            f"training {fit.seconds:.0f} s")
        rows.append(row)
    plain = next((r["val_scanned"] for r in rows if r["copies"] == 0), None)
    ok = [r for r in rows if plain is None or r["val_scanned"] >= plain - 0.01]
    best = max(ok, key=lambda r: r["val_drawn_mean"])
    for r in rows:
        r["chosen"] = r is best
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lenet bench drawn-mix", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="EMNIST folder or zip (default: the usual places)")
    p.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES),
                   help="which candidates to train (default: all)")
    p.add_argument("--seed", type=int, default=0, help="the class split, samples and nets")
    p.add_argument("--val-per-class", type=int, default=40, help="validation characters per class (at most)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = p.parse_args(argv)
    if not (args.data_dir or find_emnist()):
        raise SystemExit("bench drawn-mix needs EMNIST (--data-dir or ../shared/data/emnist)")
    ds = load("emnist", args.data_dir)
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    rows = run(ds, {k: CANDIDATES[k] for k in args.candidates}, args.seed, args.val_per_class, say=say)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("| candidate | scanned (val) | drawn mean (val) | drawn worst (val) | epochs |\n"
          "| --- | --- | --- | --- | --- |")
    for r in rows:
        mark = " <- chosen" if r["chosen"] else ""
        print(f"| {r['candidate']}{mark} | {r['val_scanned']:.1%} | {r['val_drawn_mean']:.1%} | "
              f"{r['val_drawn_worst']:.1%} | {r['epochs']} |")
    return 0
