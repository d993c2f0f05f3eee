"""`python -m lenet bench teach-drawn`: does augmenting Teach's drawn samples help it read new drawers?

Teach trains a transferred net on a few drawings of each new character. Here the drawings are
made by `bench drawn`'s pipeline from EMNIST characters the source net never learned (20 new
characters per class split, `protocol.new_characters`): each character traced once with a random
pen and size on the canvas and read back (no distortion: a person's drawing). k = 5 drawings per
character train, as Teach would (n = 4 retained levels, Teach's default, and its recipe);
20 others per character choose the number of drawn copies (validation), and 50 others, by other
writers, are the test. Every candidate is trained on the same drawings.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import numpy as np

from lenet.config import DRAWN_TEACH, TRANSFER_RECIPE
from lenet.core import checkpoint
from lenet.core.net import Net, train_transfer
from lenet.data import CharacterSet, find_emnist, load
from lenet.data.protocol import new_characters, transfer_split
from lenet.drawing.augment import augment_split, drawn_copies
from lenet.report.claims import pooled

TEACH_RECIPE = TRANSFER_RECIPE.replace(max_epochs=60, target_train_acc=1.01)  # Teach's page: 60 epochs at most
AS_DRAWN = replace(DRAWN_TEACH, copies=1.0, rotation=0.0, shear=0.0, scale=(1.0, 1.0), elastic_alpha=0.0)
COPIES = (0, 5, 10, 20)  # candidates: drawn copies per sample (0: Teach without augmentation)


def as_drawn(chars: CharacterSet, seed: int) -> CharacterSet:
    """Each character traced once on the canvas with a random pen and size, read back."""
    return drawn_copies(chars, AS_DRAWN, seed)


def run(net: Net, ds: CharacterSet, seeds=(0, 1, 2, 3, 4), trials: int = 2, k: int = 5, n: int = 4,
        copies=COPIES, say=print) -> list[dict]:
    rows = []
    for seed in seeds:
        chars = new_characters(ds, net.classes, seed)
        for trial in range(trials):
            split = transfer_split(ds, chars, k, trial=trial, seed=seed, source_classes=net.classes)
            drawn = type(split)(as_drawn(split.train, 1000 * seed + trial), as_drawn(split.test, 1000 * seed + 500),
                                split.classes, as_drawn(split.val, 1000 * seed + trial + 100))
            for c in copies:
                aug = augment_split(drawn, replace(DRAWN_TEACH, copies=float(c)), 1000 * seed + trial)
                _, fit = train_transfer(net, aug, n, TEACH_RECIPE.replace(seed=trial))
                rows.append({"seed": seed, "trial": trial, "classes": "".join(chars), "copies": c,
                             "train": len(aug.train), "val_acc": fit.val_acc, "test_acc": fit.test_acc,
                             "epochs": fit.epochs})
                say(f"seed {seed} trial {trial} copies {c}: val {fit.val_acc:.1%}, test {fit.test_acc:.1%} "
                    f"({fit.epochs} epochs)")
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per number of copies: mean validation and test accuracy over the class splits (each split's mean
    over its trials), 95% interval over the splits; the chosen one is the best on validation."""
    out = []
    for c in sorted({r["copies"] for r in rows}):
        per = {}
        for r in rows:
            if r["copies"] == c:
                per.setdefault(r["seed"], []).append(r)
        val = [np.mean([r["val_acc"] for r in rs]) for rs in per.values()]
        test = {seed: np.mean([r["test_acc"] for r in rs]) for seed, rs in per.items()}
        m, lo, hi = pooled(test.values())
        out.append({"copies": c, "val": float(np.mean(val)), "test": m, "test_interval": (lo, hi),
                    "per_split": test, "splits": len(per)})
    none = next((s for s in out if s["copies"] == 0), None)
    for s in out:  # the gain over no augmentation, paired within each split
        if none is not None:
            g, lo, hi = pooled([s["per_split"][k] - none["per_split"][k] for k in s["per_split"]])
            s["gain"], s["gain_interval"] = g, (lo, hi)
    for s in out:
        s["per_split"] = {str(k): float(v) for k, v in s["per_split"].items()}
    best = max(out, key=lambda s: s["val"])
    for s in out:
        s["chosen"] = s is best
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lenet bench teach-drawn", description=__doc__.splitlines()[0])
    p.add_argument("--source", help="source net folder (default: the shipped EMNIST one)")
    p.add_argument("--data-dir", help="EMNIST folder or zip (default: the usual places)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="class splits of new characters")
    p.add_argument("--trials", type=int, default=2, help="draws of the k samples per split")
    p.add_argument("--copies", type=int, nargs="+", default=list(COPIES), help="candidates: drawn copies per sample")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not (args.data_dir or find_emnist()):
        raise SystemExit("bench teach-drawn needs EMNIST (--data-dir or ../shared/data/emnist)")
    ds = load("emnist", args.data_dir)
    net = checkpoint.load(args.source or checkpoint.shipped("emnist"))
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    rows = run(net, ds, args.seeds, args.trials, copies=args.copies, say=say)
    summ = summary(rows)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summ}))
        return 0
    print("| drawn copies per sample | validation | test (new drawers) | minus no copies |\n| --- | --- | --- | --- |")
    for s in summ:
        (lo, hi), (glo, ghi) = s["test_interval"], s.get("gain_interval", (np.nan, np.nan))
        print(f"| {s['copies']}{' (chosen)' if s['chosen'] else ''} | {s['val']:.1%} | {s['test']:.1%} "
              f"[{lo:.1%}, {hi:.1%}] | {100 * s.get('gain', np.nan):+.1f} [{100 * glo:+.1f}, {100 * ghi:+.1f}] |")
    print(f"mean accuracy over {summ[0]['splits']} class splits (each split's mean over its trials), 95% interval "
          "with the splits resampled; the gain is paired within each split")
    return 0
