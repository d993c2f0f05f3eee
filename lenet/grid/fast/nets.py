"""Study runs on the fast path: nets a study built itself, each with its own frozen levels and gradient scales.

The grid's runs (work.py) all start from one source net and LeNet5(seed). A study's runs start from
nets it built: fine-tuned levels (AnB+), partly kept maps, random frozen levels, other source nets.
Each run here is such a net whose bottom `level` levels are frozen (their outputs are computed once;
runs whose frozen levels hold the same weights share their test-set outputs) and whose levels above
train, each parameter's gradient times its `scale` (lr_mult on fine-tuned levels, 0 on kept maps).
Runs with the same level train as one StackedUpper group (group.py), as `fit` trains each alone with
those scales as gradient hooks, up to float rounding (tests/test_fast.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from lenet.config import LEVELS, N_CLASSES, Recipe
from lenet.core.codes import transfer_codes
from lenet.core.model import LeNet5
from lenet.core.train import frozen_features
from lenet.data import to_net_input
from lenet.grid.fast.group import Finished, RunState, train_group
from lenet.grid.fast.stacked import StackedUpper


@dataclass
class NetRun:
    key: int
    net: LeNet5                  # initial weights; its bottom `level` levels are frozen
    level: int
    seed: int                    # codes and batch order, as fit with recipe.replace(seed=seed)
    images: np.ndarray           # (N, 28, 28) uint8 training set
    labels: np.ndarray
    scale: dict[str, torch.Tensor] | None = None  # "c3.kernels" -> gradient multiplier shaped like it


def _frozen_key(net: LeNet5, level: int) -> str:
    """The frozen levels' weights, as a fingerprint: runs with equal frozen levels share test features."""
    h = hashlib.sha1(str(level).encode())
    for name in LEVELS[:level]:
        for t in getattr(net, name).state_dict().values():
            h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_nets(runs: list[NetRun], test_images: np.ndarray, test_labels: np.ndarray, n_classes: int,
               recipe: Recipe, *, keep_weights: bool = False,
               should_stop: Callable[[], bool] = lambda: False) -> Iterator[Finished]:
    """Every run's result (Finished, key = the run's key) as it stops, one group per level in this process."""
    recipe.validate()
    x_test, y_test = to_net_input(test_images), torch.from_numpy(test_labels)
    by_level: dict[int, list[NetRun]] = {}
    for r in runs:
        by_level.setdefault(r.level, []).append(r)
    for level, group in sorted(by_level.items()):
        tests: dict[str, torch.Tensor] = {}
        states, feats, offset = [], [], 0
        for r in group:
            key = _frozen_key(r.net, level)
            if key not in tests:
                tests[key] = frozen_features(r.net, x_test, level)
            feats.append(frozen_features(r.net, to_net_input(r.images), level))
            codes = transfer_codes(recipe.code_kind, n_classes, r.seed, N_CLASSES)
            states.append(RunState(r.key, offset, len(r.labels), codes, torch.from_numpy(r.labels),
                                   torch.Generator().manual_seed(r.seed), h_test=tests[key]))
            offset += len(r.labels)
        model = StackedUpper([r.net for r in group], level, [r.scale for r in group])
        yield from train_group(model, states, torch.cat(feats), next(iter(tests.values())), y_test, recipe,
                               should_stop, keep_weights=keep_weights)
        if should_stop():
            return
