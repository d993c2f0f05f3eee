"""Fast experiments: the paper's grid of transfer runs, batched, cached and on every core.

`run_cells` returns, for each Cell(n, k, trial), what the plain reference
`lenet.net.train_transfer(source, transfer_split(...), n, recipe.replace(seed=run_seed))`
gives: same initialisation, codes, batch order, SGD and stopping rule (see `group.py`).
It is faster because
  1. runs with the same n train as one batched model (grouped convolutions / bmm over
     stacked per-run parameters), and stopped runs leave the group;
  2. the frozen bottom n levels run once per training set and test set, not every step;
  3. two single-threaded worker processes share the groups, and the test set is
     evaluated once per run (only the final test accuracy is reported).
Results agree with the plain path up to float rounding (batched vs per-run sums).
"""
from __future__ import annotations

import math
import os
import threading
from typing import Callable, Iterable

from ..config import Recipe
from ..data import CharacterSet
from ..data.protocol import transfer_split
from ..experiment import TEST_PER_CLASS, Cell, RunResult, run_seed
from ..net import Net
from ..transfer import check_levels
from .pool import WorkerError, run_in_process, run_in_processes
from .work import RunSpec, Shared, Task

__all__ = ["WorkerError", "plan", "run_cells"]

# Rough relative cost per training sample of the levels above n (forward + backward),
# only used to balance the workers.
LEVEL_COST = {0: 1.0, 1: 0.8, 2: 0.6, 3: 0.15, 4: 0.12, 5: 0.02}


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def plan(cells: list[Cell], workers: int) -> list[list[int]]:
    """Indexes of `cells` grouped into tasks: one group per n, the costly n split so that
    `workers` processes pulling largest-first finish together. Each split keeps a mix of k."""
    by_n: dict[int, list[int]] = {}
    for i, c in enumerate(cells):
        by_n.setdefault(c.n, []).append(i)
    cost = {n: sum(cells[i].k * LEVEL_COST[n] for i in idx) for n, idx in by_n.items()}
    target = sum(cost.values()) / (2 * workers)
    groups = []
    for n, idx in sorted(by_n.items()):
        parts = max(1, min(len(idx), math.ceil(cost[n] / target))) if workers > 1 else 1
        idx = sorted(idx, key=lambda i: (cells[i].k, cells[i].trial))
        groups += [idx[p::parts] for p in range(parts)]
    return groups


def run_cells(source: Net, ds: CharacterSet, target_classes, cells: Iterable[Cell], recipe: Recipe,
              seed: int, *, on_result: Callable[[RunResult], None] | None = None,
              stop: threading.Event | None = None, workers: int | None = None) -> list[RunResult]:
    """Every cell's RunResult, in the order of `cells` (only finished runs if `stop` is set)."""
    recipe.validate()
    cells = list(cells)
    for c in cells:
        check_levels(c.n)
    if not cells:
        return []
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    splits = {}
    for c in cells:
        if (c.k, c.trial) not in splits:
            splits[c.k, c.trial] = transfer_split(ds, target_classes, c.k, c.trial, seed, TEST_PER_CLASS,
                                                  source_classes=source.classes)
    test = next(iter(splits.values())).test  # depends on seed only: the same for every cell
    shared = Shared({k: v.detach().clone() for k, v in source.model.state_dict().items()},
                    source.model.f6.out_features, test.images, test.labels, len(list(target_classes)),
                    recipe.to_dict())
    tasks = []
    for group in plan(cells, workers):
        specs = []
        for i in group:
            sp = splits[cells[i].k, cells[i].trial]
            specs.append(RunSpec(i, run_seed(seed, cells[i]), sp.train.images, sp.train.labels,
                                 None if sp.val is None else sp.val.images, None if sp.val is None else sp.val.labels))
        tasks.append(Task(cells[group[0]].n, specs, sum(cells[i].k * LEVEL_COST[cells[i].n] for i in group)))
    finished = run_in_process(shared, tasks, stop) if workers == 1 else \
        run_in_processes(shared, tasks, workers, stop)
    results: dict[int, RunResult] = {}
    for fin in finished:
        c = cells[fin.key]
        res = RunResult(c.n, c.k, c.trial, run_seed(seed, c), fin.train_acc, fin.test_acc, fin.epochs,
                        round(fin.seconds, 3), fin.val_acc)
        results[fin.key] = res
        if on_result is not None:
            on_result(res)
    return [results[i] for i in sorted(results)]
