"""A trained net with what it needs to be used: its characters, target codes and history.

`Net` is what the CLI saves, the app loads and the Draw page classifies with.
`train_source` and `train_transfer` are the paper's two training steps.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from lenet.core import calibration
from lenet.core.codes import distances, make_codes, min_hamming, transfer_codes
from lenet.config import N_CLASSES, SOURCE_RECIPE, TRANSFER_RECIPE, Recipe
from lenet.data import CharacterSet, to_net_input
from lenet.data.protocol import Split
from lenet.core.model import LeNet5
from lenet.core.train import EpochStats, FitResult, evaluate, fit
from lenet.core.transfer import check_levels, retained_levels, transfer


@dataclass
class Net:
    model: LeNet5
    classes: list[str]            # output class i is the character classes[i]
    codes: torch.Tensor           # (len(classes), 20) target codes
    meta: dict = field(default_factory=dict)  # data source, seed, recipe, accuracy, retained n, ...

    @property
    def retained(self) -> int:
        return retained_levels(self.model)

    @torch.no_grad()
    def outputs(self, images: np.ndarray) -> torch.Tensor:
        """F6 outputs for (N, 28, 28) uint8 images."""
        self.model.eval()
        return self.model(to_net_input(images))

    def predict(self, images: np.ndarray) -> list[str]:
        d = distances(self.outputs(images), self.codes)
        return [self.classes[i] for i in d.argmin(1).tolist()]

    def rank(self, image: np.ndarray, top: int = 5) -> list[tuple[str, float]]:
        """The `top` nearest characters to one (28, 28) image, with distances to their codes."""
        d = distances(self.outputs(image[None]), self.codes)[0]
        order = d.argsort()[:top].tolist()
        return [(self.classes[i], float(d[i])) for i in order]

    @property
    def temperature(self) -> float | None:
        """The softmax temperature fitted by `calibrate` (None: not calibrated)."""
        t = self.meta.get("temperature")
        return float(t) if t else None

    def confidences(self, images: np.ndarray) -> torch.Tensor:
        """(N, classes) calibrated probabilities of (N, 28, 28) images (lenet.core.calibration)."""
        if self.temperature is None:
            raise ValueError("this net has no calibrated temperature (Net.calibrate)")
        return calibration.confidences(distances(self.outputs(images), self.codes), self.temperature)

    def read(self, image: np.ndarray, top: int = 3) -> list[tuple[str, float]]:
        """The `top` most likely characters of one (28, 28) image with their calibrated confidences."""
        p = self.confidences(image[None])[0]
        order = p.argsort(descending=True)[:top].tolist()
        return [(self.classes[i], float(p[i])) for i in order]

    def calibrate(self, images: np.ndarray, labels: np.ndarray) -> dict:
        """Fit the temperature on held-out (N, 28, 28) images with labels indexing self.classes; store it
        in meta; return the calibration report on these images (lenet.core.calibration.report)."""
        d, y = distances(self.outputs(images), self.codes), torch.as_tensor(labels, dtype=torch.long)
        t = calibration.fit_temperature(d, y)
        self.meta["temperature"] = t
        return calibration.report(d, y, t)

    def accuracy(self, data: CharacterSet) -> float:
        """Accuracy on a set labelled with this net's classes (labels index `data.classes`)."""
        idx = {c: i for i, c in enumerate(self.classes)}
        y = torch.tensor([idx[data.classes[l]] for l in data.labels.tolist()])
        return evaluate(self.model, to_net_input(data.images), y, self.codes)[1]


def confusions(net: Net, ds: CharacterSet, per_class: int = 300) -> dict[tuple[str, str], float]:
    """{(new character b, source character a): share of b's images (the first per_class) that the
    source net reads as a}, for every character b of ds the net does not know: which unseen glyphs
    it takes for its own (the evidence behind lenet.data.twins)."""
    out = {}
    for b in ds.classes:
        if b in net.classes:
            continue
        rows = np.flatnonzero(ds.labels == ds.classes.index(b))[:per_class]
        read = net.predict(ds.images[rows])
        for a in net.classes:
            out[b, a] = read.count(a) / len(read)
    return out


def _tensors(split: Split):
    return (to_net_input(split.train.images), torch.from_numpy(split.train.labels),
            to_net_input(split.test.images), torch.from_numpy(split.test.labels))


def train_source(split: Split, recipe: Recipe = SOURCE_RECIPE, *,
                 on_step: Callable[[int, float], None] | None = None,
                 on_epoch: Callable[[EpochStats], None] | None = None,
                 stop: threading.Event | None = None, device=None,
                 extra: CharacterSet | None = None, extra_meta: dict | None = None) -> tuple[Net, FitResult]:
    """Train a whole net from scratch on the source characters (the paper's source net);
    `device` as in `fit`. `extra`: more training views of the same characters (drawn copies,
    lenet.drawing.augment; described by `extra_meta`), trained on with them; the training accuracy
    and loss that stop the net are measured on split.train alone (lenet/config.py, DrawnCopies)."""
    codes = make_codes(recipe.code_kind, len(split.classes), N_CLASSES, recipe.seed)
    model = LeNet5(n_outputs=codes.shape[1], seed=recipe.seed, lanes=True)  # C1..S4 through lenet.kernels.lanes
    x, y, xt, yt = _tensors(split)
    scored = None
    if extra is not None and len(extra):
        scored = len(x)
        x = torch.cat([x, to_net_input(extra.images)])
        y = torch.cat([y, torch.from_numpy(extra.labels)])
    result = fit(model, x, y, codes, recipe, xt, yt, on_step=on_step, on_epoch=on_epoch, stop=stop, device=device,
                 scored=scored)
    model.lanes = False  # drawings come one at a time: the plain ops
    meta = {"role": "source", "data": split.train.source, "data_description": split.train.description,
            "recipe": recipe.to_dict(), "train_acc": result.train_acc, "heldout_acc": result.test_acc,
            "epochs": result.epochs, "train_per_class": int(len(split.train) // len(split.classes)),
            "min_hamming": min_hamming(codes), "retained": 0, "stopped": result.stopped,
            "extra_train": 0 if scored is None else len(x) - scored, "augment": extra_meta}
    return Net(model, list(split.classes), codes, meta), result


def train_transfer(source: Net, split: Split, n: int, recipe: Recipe = TRANSFER_RECIPE, *,
                   on_step: Callable[[int, float], None] | None = None,
                   on_epoch: Callable[[EpochStats], None] | None = None,
                   stop: threading.Event | None = None, cache_frozen: bool = True,
                   device=None) -> tuple[Net, FitResult]:
    """Copy the source net's bottom n levels (frozen) and train the rest on the new characters.
    `cache_frozen=False` runs the whole net every step, as a plain loop would (same result)."""
    check_levels(n)
    overlap = sorted(set(source.classes) & set(split.classes))
    if overlap:
        raise ValueError(f"new characters overlap the source net's: {''.join(overlap)!r}")
    codes = transfer_codes(recipe.code_kind, len(split.classes), recipe.seed, N_CLASSES)
    model = transfer(source.model, n, seed=recipe.seed)
    x, y, xt, yt = _tensors(split)
    xv, yv = (to_net_input(split.val.images), torch.from_numpy(split.val.labels)) if split.val is not None \
        else (None, None)
    result = fit(model, x, y, codes, recipe, xt, yt, x_val=xv, y_val=yv, on_step=on_step, on_epoch=on_epoch,
                 stop=stop, cache_frozen=cache_frozen, device=device)
    k = int(len(split.train) // len(split.classes))
    meta = {"role": "transfer", "data": split.train.source, "data_description": split.train.description,
            "recipe": recipe.to_dict(), "retained": n, "k": k, "source_classes": list(source.classes),
            "train_acc": result.train_acc, "test_acc": result.test_acc, "val_acc": result.val_acc,
            "epochs": result.epochs, "best_epoch": result.best_epoch,
            "min_hamming": min_hamming(codes), "stopped": result.stopped}
    return Net(model, list(split.classes), codes, meta), result
