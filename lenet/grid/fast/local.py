"""The fast path's task groups on worker processes of one thread each (through
`lenet.procs.relay`): at these small batches two one-thread processes beat one process of two
threads. Workers pull tasks (largest first), so both stay busy, and send each run's result
back as it stops; stopping terminates them. `run_in_process` is the same work in this process.
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable, Iterator

import torch

from lenet.procs import lower_priority, relay
from lenet.core.train import TrainingError
from lenet.grid.fast.group import Finished
from lenet.grid.fast.work import Shared, Task, run_task


def _worker(setup, tasks, results) -> None:
    lower_priority()  # the server that answers browsers comes first
    torch.set_num_threads(1)
    try:
        shared = setup.get()
        for task in iter(tasks.get, None):
            for fin in run_task(shared, task, lambda: False):
                results.put(("result", fin))
        results.put(("done", None))
    except Exception as e:
        results.put(("error", (type(e).__name__, str(e), traceback.format_exc())))


def run_in_processes(shared: Shared, tasks: list[Task], workers: int,
                     stop: threading.Event | None) -> Iterator[Finished]:
    yield from relay(_worker, shared, sorted(tasks, key=lambda t: -t.cost), workers, stop, "fast-path", [__name__],
                     errors={"TrainingError": TrainingError})


def run_in_process(shared: Shared, tasks: list[Task], stop: threading.Event | None) -> Iterator[Finished]:
    should_stop: Callable[[], bool] = (lambda: False) if stop is None else stop.is_set
    for task in sorted(tasks, key=lambda t: -t.cost):
        yield from run_task(shared, task, should_stop)
        if should_stop():
            return
