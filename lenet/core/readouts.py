"""Readouts: how the new characters are read from a source net whose bottom n levels are retained.

  mse       the paper's: the levels above n trained afresh, F6 towards random target codes (MSE),
            a prediction is the nearest code (core.net.train_transfer does the same)
  ce        the same levels above n trained afresh, F6 one output per class read as softmax logits,
            cross-entropy (F6's pre-activation: the squashing would cap the logits at +-1.7)
  centroid  no training: the nearest class mean of the frozen level-n features (prototypes;
            Snell et al. 2017 without the metric learning); with k = 1, the nearest neighbour
  probe     a linear probe: multinomial logistic regression on the frozen level-n features,
            standardised, with an L2 penalty (READOUT_PROBE_L2 in lenet/config.py)

Each is one function from (source net, n, training images and labels, images to classify) to
predicted labels, so the grid, the one-shot benchmark and the app call them alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lenet.config import LAYERS, PROBE_L2, PROBE_STEPS, TRANSFER_RECIPE, Recipe
from lenet.core.codes import decode, transfer_codes
from lenet.core.model import LeNet5, scaled_tanh
from lenet.core.train import fit, frozen_features
from lenet.core.transfer import check_levels, transfer

READOUTS = ("mse", "ce", "centroid", "probe")
DEFAULT = "mse"  # the paper's


def check_readouts(names) -> list[str]:
    names = list(names)
    unknown = [r for r in names if r not in READOUTS]
    if not names or unknown:
        raise ValueError(f"readouts must be some of {', '.join(READOUTS)} (got {', '.join(map(str, names)) or 'none'})")
    return list(dict.fromkeys(names))


@torch.no_grad()
def features(model: LeNet5, x: torch.Tensor, n: int) -> torch.Tensor:
    """(N, D) frozen level-n features of net inputs x (N, 1, 32, 32); n = 0: the pixels."""
    model.eval()
    return frozen_features(model, x, n).flatten(1)


def centroid(f: torch.Tensor, y: torch.Tensor, ft: torch.Tensor) -> torch.Tensor:
    """Labels of ft by the nearest (Euclidean) class mean of the features f with labels y (0..C-1)."""
    means = torch.stack([f[y == c].mean(0) for c in range(int(y.max()) + 1)])  # (C, D)
    return torch.cdist(ft, means).argmin(1)


def probe(f: torch.Tensor, y: torch.Tensor, ft: torch.Tensor, l2: float = PROBE_L2,
          steps: int = PROBE_STEPS) -> torch.Tensor:
    """Labels of ft by multinomial logistic regression fitted on (f, y): features standardised by the
    training set's mean and sd (dividing by the sd of a feature that barely varies over a few samples
    would blow up its noise on new ones), loss = mean cross-entropy + l2 * |W|^2, full-batch L-BFGS."""
    mu, sd = f.mean(0), f.std(0, unbiased=False)
    sd = torch.where(sd > 1e-3, sd, torch.ones_like(sd))  # a feature (nearly) constant on the training set stays unscaled
    z, zt = (f - mu) / sd, (ft - mu) / sd
    classes = int(y.max()) + 1
    w = torch.zeros(z.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(z @ w + b, y) + l2 * (w * w).sum()
        value.backward()
        return value

    with torch.enable_grad():
        opt.step(loss)
    with torch.no_grad():
        return (zt @ w + b).argmax(1)


def _logits(model: LeNet5, h: torch.Tensor, n: int) -> torch.Tensor:
    for name in LAYERS[n:-1]:
        h = scaled_tanh(model.pre_activation(name, h))
    return model.pre_activation("f6", h)  # (B, C): F6 before its squashing


def train_ce(model: LeNet5, h: torch.Tensor, y: torch.Tensor, n: int, recipe: Recipe) -> None:
    """SGD with momentum on the cross-entropy of F6's pre-activation, the recipe's batch, rate and
    epochs; stops early once the training loss is at most recipe.target_train_loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum)
    g = torch.Generator().manual_seed(recipe.seed)
    model.train()
    for _ in range(recipe.max_epochs):
        order = torch.randperm(len(h), generator=g)
        for i in range(0, len(h), recipe.batch_size):
            idx = order[i:i + recipe.batch_size]
            loss = F.cross_entropy(_logits(model, h[idx], n), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            if F.cross_entropy(_logits(model, h, n), y).item() <= recipe.target_train_loss:
                break
    model.eval()


def readout(kind: str, source: LeNet5, n: int, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor,
            recipe: Recipe = TRANSFER_RECIPE, device=None) -> torch.Tensor:
    """Predicted labels (0..C-1) of the net inputs xt, read out at retained level n of `source` after
    learning from (x, y); `recipe` (its seed included) trains the mse and ce readouts, the mse one on
    `device` (as `fit`)."""
    check_levels(n)
    check_readouts([kind])
    y = torch.as_tensor(y, dtype=torch.int64)
    classes = int(y.max()) + 1
    if kind in ("centroid", "probe"):
        f, ft = features(source, x, n), features(source, xt, n)
        return centroid(f, y, ft) if kind == "centroid" else probe(f, y, ft)
    if kind == "mse":
        codes = transfer_codes(recipe.code_kind, classes, recipe.seed)
        model = transfer(source, n, seed=recipe.seed)
        fit(model, x, y, codes, recipe, device=device)
        with torch.no_grad():
            return decode(model(xt), codes)
    model = transfer(source, n, seed=recipe.seed, n_outputs=classes)
    h, ht = frozen_features(model, x, n), frozen_features(model, xt, n)
    train_ce(model, h, y, n, recipe)
    with torch.no_grad():
        return _logits(model, ht, n).argmax(1)
