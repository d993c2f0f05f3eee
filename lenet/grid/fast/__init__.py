"""Fast experiments: the paper's grid of transfer runs, batched, cached and on every core.

`run_cells` returns, for each Cell(n, k, trial), what the plain reference
`lenet.core.net.train_transfer(source, transfer_split(...), n, recipe.replace(seed=run_seed))`
gives: same initialisation, codes, batch order, SGD and stopping rule (see `group.py`).
It is faster because
  1. runs with the same n train as one batched model (grouped convolutions / bmm over
     stacked per-run parameters), and stopped runs leave the group;
  2. the frozen bottom n levels run once per training set and test set, not every step;
  3. two single-threaded worker processes share the groups, and the test set is
     evaluated once per run (only the final test accuracy is reported).
Results agree with the plain path up to float rounding (batched vs per-run sums).

With `ray_address` (or LENET_RAY) the task groups go to a Ray cluster instead
(`ray_runner.py`). On a CUDA device every run of the call trains at once as one model (`fused.py`), its data
resident on the device; `fused=True` runs that path on the CPU too (the tests do).
"""
from __future__ import annotations

import math
import os
import threading
from typing import Callable, Iterable

from lenet.config import Recipe
from lenet.data import CharacterSet
from lenet.data.protocol import VAL_PER_CLASS, transfer_split
from lenet.device import resolve
from lenet.grid.cells import TEST_PER_CLASS, Cell, RunResult, run_seed
from lenet.core.net import Net
from lenet.core.transfer import check_levels
from lenet.grid.fast.local import run_in_process, run_in_processes
from lenet.procs import WorkerError
from lenet.grid.fast.ray_runner import address_from_env, cluster_cpus, run_on_ray
from lenet.grid.fast.work import RunSpec, Shared, Task

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
              stop: threading.Event | None = None, workers: int | None = None, device=None,
              fused: bool | None = None, ray_address: str | None = None, test_per_class: int = TEST_PER_CLASS,
              val_per_class: int = VAL_PER_CLASS) -> list[RunResult]:
    """Every cell's RunResult, in the order of `cells` (only finished runs if `stop` is set).

    `device`: see lenet.device (None reads LENET_DEVICE). `fused` (default: on CUDA) trains
    every cell at once in this process instead of per-n groups in `workers` processes.
    `ray_address` (None reads LENET_RAY; "" is local) sends the groups to a Ray cluster,
    planned for `workers` (default: the cluster's CPUs). `test_per_class` and `val_per_class` size each
    character's fixed test set and each trial's validation set (transfer_split; Omniglot's are smaller)."""
    recipe.validate()
    dev = resolve(device)
    ray_address = address_from_env(ray_address)
    fused = dev.type == "cuda" and not ray_address if fused is None else fused
    cells = list(cells)
    for c in cells:
        check_levels(c.n)
    if not cells:
        return []
    if workers is None:
        workers = cluster_cpus(ray_address) if ray_address else default_workers()
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    splits = {}
    for c in cells:
        if (c.k, c.trial) not in splits:
            splits[c.k, c.trial] = transfer_split(ds, target_classes, c.k, c.trial, seed, test_per_class,
                                                  source_classes=source.classes, val_per_class=val_per_class)
    test = next(iter(splits.values())).test  # depends on seed only: the same for every cell
    shared = Shared({k: v.detach().clone() for k, v in source.model.state_dict().items()},
                    source.model.f6.out_features, test.images, test.labels, len(list(target_classes)),
                    recipe.to_dict())
    if fused:
        from lenet.grid.fast.fused import run_fused
        should_stop = (lambda: False) if stop is None else stop.is_set
        finished = run_fused(shared, [(c.n, _spec(i, c, seed, splits)) for i, c in enumerate(cells)], dev,
                             should_stop)
        return _collect(cells, seed, finished, on_result)
    tasks = []
    for group in plan(cells, workers):
        specs = [_spec(i, cells[i], seed, splits) for i in group]
        tasks.append(Task(cells[group[0]].n, specs, sum(cells[i].k * LEVEL_COST[cells[i].n] for i in group)))
    if ray_address:
        finished = run_on_ray(shared, tasks, ray_address, stop)
    elif workers == 1 or len(tasks) == 1:  # one task group: no worker processes to start for it
        finished = run_in_process(shared, tasks, stop)
    else:
        finished = run_in_processes(shared, tasks, workers, stop)
    return _collect(cells, seed, finished, on_result)


def _spec(i: int, c: Cell, seed: int, splits) -> RunSpec:
    sp = splits[c.k, c.trial]
    return RunSpec(i, run_seed(seed, c), sp.train.images, sp.train.labels,
                   None if sp.val is None else sp.val.images, None if sp.val is None else sp.val.labels)


def _collect(cells: list[Cell], seed: int, finished, on_result) -> list[RunResult]:
    results: dict[int, RunResult] = {}
    for fin in finished:
        c = cells[fin.key]
        res = RunResult(c.n, c.k, c.trial, run_seed(seed, c), fin.train_acc, fin.test_acc, fin.epochs,
                        round(fin.seconds, 3), fin.val_acc, fin.train_loss, fin.steps, bool(fin.capped))
        results[fin.key] = res
        if on_result is not None:
            on_result(res)
    return [results[i] for i in sorted(results)]
