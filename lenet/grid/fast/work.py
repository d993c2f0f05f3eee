"""One unit of work for a worker: a group of cells with the same n, from plain picklable data.

A worker rebuilds the source net from its state dict, computes the frozen levels' outputs
once for the task's training sets and the shared test set (they never change while the
levels above train), builds each run's initial net and codes exactly as
`lenet.core.net.train_transfer` does, and trains the group with `train_group`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from lenet.core.codes import transfer_codes
from lenet.config import N_CLASSES, Recipe
from lenet.data import to_net_input
from lenet.core.model import LeNet5
from lenet.core.train import frozen_features
from lenet.grid.fast.group import Finished, RunState, train_group
from lenet.grid.fast.stacked import StackedUpper


@dataclass
class Shared:
    """What every task of one run_cells call shares."""
    source_state: dict           # source net's state_dict
    n_outputs: int
    test_images: np.ndarray      # (N, 28, 28) uint8, the same 1,000 characters for every run
    test_labels: np.ndarray
    n_classes: int               # target characters
    recipe: dict


@dataclass
class RunSpec:
    key: int
    seed: int                    # run_seed(seed, cell): init, codes (+7919) and batch order
    images: np.ndarray           # (k * n_classes, 28, 28) uint8 training set
    labels: np.ndarray
    val_images: np.ndarray | None = None  # the trial's validation set, if any
    val_labels: np.ndarray | None = None


@dataclass
class Task:
    n: int
    runs: list[RunSpec]
    cost: float                  # rough relative cost, for scheduling the largest tasks first


def run_task(shared: Shared, task: Task, should_stop: Callable[[], bool]) -> Iterator[Finished]:
    recipe = Recipe.from_dict(shared.recipe)
    source = LeNet5(n_outputs=shared.n_outputs)
    source.load_state_dict(shared.source_state)
    source.requires_grad_(False)
    n = task.n
    h_test = frozen_features(source, to_net_input(shared.test_images), n)
    nets, states, feats, val_feats, offset, val_offset = [], [], [], [], 0, 0
    has_val = all(spec.val_images is not None for spec in task.runs)
    for spec in task.runs:
        nets.append(LeNet5(n_outputs=shared.n_outputs, seed=spec.seed))
        feats.append(frozen_features(source, to_net_input(spec.images), n))
        codes = transfer_codes(recipe.code_kind, shared.n_classes, spec.seed, N_CLASSES)
        state = RunState(spec.key, offset, len(spec.labels), codes, torch.from_numpy(spec.labels),
                         torch.Generator().manual_seed(spec.seed))
        if has_val:
            val_feats.append(frozen_features(source, to_net_input(spec.val_images), n))
            state.val_offset, state.y_val = val_offset, torch.from_numpy(spec.val_labels)
            val_offset += len(spec.val_labels)
        states.append(state)
        offset += len(spec.labels)
    model = StackedUpper(nets, n)
    yield from train_group(model, states, torch.cat(feats), h_test, torch.from_numpy(shared.test_labels),
                           recipe, should_stop, torch.cat(val_feats) if has_val else None)
