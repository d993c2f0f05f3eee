"""Independent study runs on worker processes of one thread each, as the grid's fast path does
(`lenet.grid.fast.local.relay`): a forkserver starts the workers, they pull tasks largest first from
a queue and send each result back as it ends; `stop` terminates them within a tenth of a second.

A study run is a plain function `fn(shared, task) -> dict`, defined at module level (so it
travels by name); `shared` goes to each worker once, tasks are small.
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable, Iterator

import torch

from lenet.grid.fast import default_workers
from lenet.grid.fast.local import relay


def _worker(setup, tasks, results) -> None:
    torch.set_num_threads(1)
    try:
        fn, shared = setup.get()
        for index, task in iter(tasks.get, None):
            results.put(("result", (index, fn(shared, task))))
        results.put(("done", None))
    except Exception as e:
        results.put(("error", (type(e).__name__, str(e), traceback.format_exc())))


def run_tasks(fn: Callable[[dict, dict], dict], shared: dict, tasks: list[dict], *, costs: list[float] | None = None,
              workers: int | None = None, stop: threading.Event | None = None,
              ray: str | None = None) -> Iterator[tuple[int, dict]]:
    """(index into tasks, fn(shared, task)) for every task, in the order they finish; with `ray` (a
    cluster address, see lenet.grid.fast.ray_runner) each task runs on that Ray cluster instead."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    order = sorted(range(len(tasks)), key=lambda i: -(costs[i] if costs else 0.0))
    if ray:
        from lenet.grid.fast.ray_runner import run_calls_on_ray
        yield from run_calls_on_ray(fn, shared, tasks, order, ray, stop)
        return
    if workers == 1 or len(tasks) <= 1:
        for i in order:
            if stop is not None and stop.is_set():
                return
            yield i, fn(shared, tasks[i])
        return
    workers = min(workers, len(tasks))
    yield from relay(_worker, (fn, shared), [(i, tasks[i]) for i in order], workers, stop, "study", [__name__])
