"""`python -m lenet bench drawn`: how well nets read characters drawn on the canvas, by pen and size.

Drawn characters made here, not collected: held-out characters of a net's classes are
thinned to their skeletons and redrawn the way the Draw page's canvas draws (a 280 px
RGBA canvas, an antialiased round pen of 4-40 px, the character 30-90% of the canvas),
then read through the canvas pipeline (`canvas.canvas_to_image`) with and without stroke
normalisation, and from the pen's trajectory as the Draw page reads a drawing
(`canvas.trajectory_to_image`); with calibrated nets, the calibration error of their confidences.
A benchmark: it prints figures and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.morphology import skeletonize

from lenet.core import checkpoint
from lenet.ink import strokes
from lenet.config import NOT_SURE, STROKE_WIDTH
from lenet.data import CharacterSet, find_emnist, load
from lenet.ink.framing import frame_character
from lenet.data.protocol import source_split
from lenet.core.net import Net
from lenet.core import calibration
from lenet.core.codes import distances
from lenet.drawing.canvas import canvas_to_image, trajectory_to_image

CANVAS = 280  # px, the Draw page's canvas (ui.drawing.CANVAS_PX)
PENS = (4, 10, 18, 28, 40)  # px on the canvas
SIZES = (0.3, 0.5, 0.7, 0.9)  # the skeleton's larger side, as a fraction of the canvas
QUICK = dict(pens=(4, 18, 40), sizes=(0.3, 0.9), per_class=4)
UPSAMPLE = 4  # a 28x28 character is thinned at 112x112, where its skeleton is smooth
HELDOUT = 100  # held-out samples per class of `train-source` (its --heldout default)
_STEPS = ((0, 1), (1, -1), (1, 0), (1, 1))  # each 8-neighbour pair of skeleton pixels once


def skeleton(image28: np.ndarray) -> np.ndarray:
    """(28, 28) character -> its skeleton (bool) at UPSAMPLE x the resolution."""
    side = 28 * UPSAMPLE
    big = np.asarray(Image.fromarray(np.asarray(image28, np.float32), mode="F").resize((side, side),
                                                                                         Image.Resampling.BICUBIC))
    return skeletonize(big >= strokes.INK * big.max())


def trace(skel: np.ndarray, size: float, rng: np.random.Generator, reach: float = 1.0,
          canvas: int = CANVAS) -> np.ndarray:
    """The pen's path (its centre line) of a skeleton traced on the canvas: (canvas, canvas) bool, the
    skeleton's larger side `size` x canvas, placed at random at least `reach` px from the edges."""
    ys, xs = np.nonzero(skel)
    scale = size * canvas / (max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)
    h, w = (ys.max() - ys.min()) * scale, (xs.max() - xs.min()) * scale
    oy = rng.uniform(reach, max(reach, canvas - reach - h)) - ys.min() * scale
    ox = rng.uniform(reach, max(reach, canvas - reach - w)) - xs.min() * scale
    path = Image.new("1", (canvas, canvas))
    pen_down = ImageDraw.Draw(path)
    on = set(zip(ys.tolist(), xs.tolist()))
    for y, x in on:
        pen_down.point((ox + x * scale, oy + y * scale), fill=1)
        for dy, dx in _STEPS:
            if (y + dy, x + dx) in on:
                pen_down.line([(ox + x * scale, oy + y * scale), (ox + (x + dx) * scale, oy + (y + dy) * scale)],
                              fill=1, width=1)
    return np.asarray(path)


def draw(skel: np.ndarray, pen: float, size: float, rng: np.random.Generator, canvas: int = CANVAS,
         trajectory: bool = False):
    """A skeleton drawn as canvas strokes: (canvas, canvas, 4) uint8, black ink on transparent,
    the skeleton's larger side `size` x canvas, placed at random where the pen stays on the canvas.
    trajectory: also return the pen's path, (canvas, canvas) bool, as the canvas records it."""
    path = trace(skel, size, rng, pen / 2 + 1, canvas)
    cover = strokes.redraw(path, pen)
    pad = (len(cover) - canvas) // 2  # redraw pads so the pen fits; the canvas clips
    rgba = np.zeros((canvas, canvas, 4), np.uint8)
    rgba[:, :, 3] = np.round(cover[pad:pad + canvas, pad:pad + canvas] * 255)
    return (rgba, path) if trajectory else rgba


def heldout(net: Net, ds: CharacterSet, per_class: int, seed: int = 0) -> CharacterSet:
    """per_class characters of each of the net's classes that it never trained on.

    A source net trained on this data (its meta names it): its own held-out split, remade from
    the seed in its recipe (train-source's source_split). Other data: a seeded random pick."""
    if net.meta.get("data") == ds.source:
        split = source_split(ds, net.classes, int(net.meta["train_per_class"]), HELDOUT,
                             int(net.meta["recipe"]["seed"]))
        rows = np.concatenate([np.flatnonzero(split.test.labels == i)[:per_class] for i in range(len(net.classes))])
        return split.test.subset(rows)
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i, c in enumerate(net.classes):
        if c not in ds.classes:
            raise ValueError(f"{ds.source} has no class {c!r} of the net")
        rows.append(rng.permutation(np.flatnonzero(ds.labels == ds.classes.index(c)))[:per_class])
        labels.append(np.full(len(rows[-1]), i))
    return CharacterSet(ds.images[np.concatenate(rows)], np.concatenate(labels), list(net.classes), ds.source,
                        ds.description)


def run(nets: dict[str, Net], ds: CharacterSet, pens=PENS, sizes=SIZES, per_class: int = 10, seed: int = 0,
        say=print) -> dict:
    """Accuracy of each net on its held-out characters as they are, and drawn with every pen and size,
    read with the pipeline as it was (before) and with stroke normalisation (after)."""
    out = {"data": ds.source, "pens": list(pens), "sizes": list(sizes), "per_class": per_class,
           "stroke_width_target": STROKE_WIDTH, "nets": {}}
    for name, net in nets.items():
        chars = heldout(net, ds, per_class, seed)
        truth = [net.classes[i] for i in chars.labels]
        skeletons = [skeleton(im) for im in chars.images]
        # The skeletons redrawn straight at 28x28 with EMNIST's stroke width: no canvas, no pen
        # or size, so what the redrawing alone costs (the best "after" can be).
        redrawn = np.stack([frame_character(strokes.normalise(s.astype(np.float32)), ink_is_dark=False)
                            for s in skeletons])
        res = {"classes": "".join(net.classes), "n": len(chars),
               "heldout_acc": float(np.mean(np.array(net.predict(chars.images)) == truth)),
               "redrawn_acc": float(np.mean(np.array(net.predict(redrawn)) == truth)),
               "heldout_stroke_width": float(np.mean([strokes.width(im) for im in chars.images])),
               "before": {}, "after": {}, "trajectory": {}, "width_after": {}}
        say(f"{name}: {len(chars)} held-out characters of {res['classes']} from {ds.source}; "
            f"as they are: {res['heldout_acc']:.1%}, stroke width {res['heldout_stroke_width']:.2f} px; "
            f"skeletons redrawn at 28x28: {res['redrawn_acc']:.1%}")
        t0 = time.perf_counter()
        read = []  # from the trajectory, as the Draw page reads: for calibration
        for pen in pens:
            for size in sizes:
                rng = np.random.default_rng([seed, pen, round(size * 100)])
                drawn = [draw(s, pen, size, rng, trajectory=True) for s in skeletons]
                key = f"{pen}px/{size:.0%}"
                for when, norm in (("before", False), ("after", True)):
                    images = np.stack([canvas_to_image(d, normalise=norm) for d, _ in drawn])
                    res[when][key] = float(np.mean(np.array(net.predict(images)) == truth))
                    if norm:
                        res["width_after"][key] = float(np.mean([strokes.width(im) for im in images]))
                images = np.stack([trajectory_to_image(path) for _, path in drawn])
                read.append(images)
                res["trajectory"][key] = float(np.mean(np.array(net.predict(images)) == truth))
                say(f"  pen {pen:>2} px, size {size:.0%}: before {res['before'][key]:.1%}, "
                    f"after {res['after'][key]:.1%}, from the trajectory {res['trajectory'][key]:.1%}")
        res["seconds"] = round(time.perf_counter() - t0, 1)
        for when in ("before", "after", "trajectory"):
            res[f"worst_{when}"] = min(res[when].values())
            res[f"mean_{when}"] = float(np.mean(list(res[when].values())))
        if net.temperature is not None:  # calibration on held-out characters, scanned and drawn (after)
            idx = {c: i for i, c in enumerate(net.classes)}
            y = np.array([idx[c] for c in truth])
            res["calibration"] = {what: calibration.report(distances(net.outputs(ims), net.codes),
                                                           torch.as_tensor(np.tile(y, len(ims) // len(y))),
                                                           net.temperature)
                                  for what, ims in (("scanned", chars.images), ("drawn", np.concatenate(read)))}
        res["cells_within_3_points"] = sum(res["heldout_acc"] - a <= 0.03 for a in res["after"].values())
        res["cells_within_3_points_of_redrawn"] = sum(res["redrawn_acc"] - a <= 0.03 for a in res["after"].values())
        res["trajectory_cells_within_3_points"] = sum(res["heldout_acc"] - a <= 0.03
                                                      for a in res["trajectory"].values())
        out["nets"][name] = res
    return out


def table(res: dict, pens, sizes, after: str = "after") -> str:
    """Markdown: pens down, sizes across, 'before -> after' in each cell (after: "after" or "trajectory")."""
    lines = ["| pen \\ size | " + " | ".join(f"{s:.0%}" for s in sizes) + " |",
             "| --- |" + " --- |" * len(sizes)]
    for pen in pens:
        cells = [f"{res['before'][f'{pen}px/{s:.0%}']:.0%} -> **{res[after][f'{pen}px/{s:.0%}']:.0%}**"
                 for s in sizes]
        lines.append(f"| {pen} px | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lenet bench drawn", description=__doc__.splitlines()[0])
    p.add_argument("--source", action="append",
                   help="a net folder (repeatable; default: assets/source-emnist and assets/source-synthetic)")
    p.add_argument("--data", choices=("emnist", "synthetic"),
                   help="whose characters are redrawn (default: emnist if found, else synthetic)")
    p.add_argument("--data-dir", help="EMNIST folder or zip (default: the usual places)")
    p.add_argument("--per-class", type=int, help="characters per class (default 10; --quick 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the picks and placements")
    p.add_argument("--quick", action="store_true", help="3 pens x 2 sizes, 4 characters per class")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = p.parse_args(argv)
    kind = args.data or ("emnist" if args.data_dir or find_emnist() else "synthetic")
    ds = load(kind, args.data_dir)
    sources = args.source or [str(f) for f in map(checkpoint.shipped, ("emnist", "synthetic")) if f is not None]
    nets = {Path(s).name: checkpoint.load(s) for s in sources}
    pens, sizes = (QUICK["pens"], QUICK["sizes"]) if args.quick else (PENS, SIZES)
    per_class = args.per_class or (QUICK["per_class"] if args.quick else 10)
    say = (lambda m: print(m, file=sys.stderr)) if args.json else print
    out = run(nets, ds, pens, sizes, per_class, args.seed, say)
    if args.json:
        print(json.dumps(out))
        return 0
    for name, res in out["nets"].items():
        print(f"\n{name} on {out['data']} (held out, as they are: {res['heldout_acc']:.1%}); "
              f"before -> after stroke normalisation:\n{table(res, pens, sizes)}")
        print(f"worst cell {res['worst_before']:.1%} -> {res['worst_after']:.1%}; mean {res['mean_before']:.1%} -> "
              f"{res['mean_after']:.1%}; cells within 3 points of held out: {res['cells_within_3_points']}"
              f"/{len(res['after'])}, of the redrawn skeletons ({res['redrawn_acc']:.1%}): "
              f"{res['cells_within_3_points_of_redrawn']}/{len(res['after'])}")
        print(f"from the pen's trajectory instead of the raster:\n{table(res, pens, sizes, 'trajectory')}\n"
              f"worst cell {res['worst_trajectory']:.1%}, mean {res['mean_trajectory']:.1%}; cells within 3 points "
              f"of held out: {res['trajectory_cells_within_3_points']}/{len(res['trajectory'])}")
        for what, c in res.get("calibration", {}).items():
            print(f"calibrated confidences on the held-out characters, {what} ({c['n']}): temperature "
                  f"{c['temperature']:.3f}, ECE {c['ece']:.1%}, NLL {c['nll']:.3f}; 'not sure' (< {NOT_SURE:.0%}) "
                  f"on {c['not_sure_share']:.1%}, right {c['accuracy_when_sure']:.1%} when sure and "
                  f"{c['accuracy_when_not_sure']:.1%} when not")
    return 0
