"""Independent study runs on worker processes of one thread each, as the grid's fast path does
(`lenet.fast.pool`): a forkserver starts the workers, they pull tasks largest first from a
queue and send each result back as it ends; `stop` terminates them within POLL seconds.

A study run is a plain function `fn(shared, task) -> dict`, defined at module level (so it
travels by name); `shared` goes to each worker once, tasks are small.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import traceback
from typing import Callable, Iterator

import torch

from ..fast.pool import WorkerError, workers_skip_main
from ..train import TrainingError

POLL = 0.1  # seconds between checks of the stop event while waiting for results


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


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
    cluster address, see lenet.fast.ray_runner) each task runs on that Ray cluster instead."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    order = sorted(range(len(tasks)), key=lambda i: -(costs[i] if costs else 0.0))
    if ray:
        from ..fast.ray_runner import run_calls_on_ray
        yield from run_calls_on_ray(fn, shared, tasks, order, ray, stop)
        return
    if workers == 1 or len(tasks) <= 1:
        for i in order:
            if stop is not None and stop.is_set():
                return
            yield i, fn(shared, tasks[i])
        return
    workers = min(workers, len(tasks))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    task_q, result_q = ctx.Queue(), ctx.Queue()
    setups = [ctx.Queue() for _ in range(workers)]
    for q in setups:
        q.put((fn, shared))
    for i in order:
        task_q.put((i, tasks[i]))
    for _ in range(workers):
        task_q.put(None)
    procs = [ctx.Process(target=_worker, args=(q, task_q, result_q), daemon=True) for q in setups]
    lock, started, closing, failed = threading.Lock(), [], [False], []

    def start_all() -> None:  # the first start waits for the forkserver to import torch: not on the stop path
        for p in procs:
            with lock:
                if closing[0]:
                    return
            try:
                with workers_skip_main():  # as the grid's workers: never import the caller's script
                    p.start()
            except Exception as e:  # reported by the waiting loop, which would otherwise wait forever
                failed.append(f"{type(e).__name__}: {e}")
                return
            with lock:
                started.append(p)
                if closing[0]:
                    p.terminate()
    threading.Thread(target=start_all, daemon=True).start()
    running = workers
    try:
        while running:
            if stop is not None and stop.is_set():
                return
            try:
                kind, payload = result_q.get(timeout=POLL)
            except queue.Empty:
                with lock:
                    dead = len(started) == workers and not any(p.is_alive() for p in started)
                if failed:
                    raise WorkerError(f"the study's worker processes could not start: {failed[0]}")
                if dead:
                    raise WorkerError("the study's worker processes exited without finishing their work")
                continue
            if kind == "result":
                yield payload
            elif kind == "done":
                running -= 1
            else:
                name, message, trace = payload
                if name == "TrainingError":
                    raise TrainingError(message)
                raise WorkerError(f"a study worker failed: {name}: {message}\n{trace}")
    finally:
        with lock:
            closing[0] = True
            for p in started:
                if p.is_alive():
                    p.terminate()
        for p in started:
            p.join(timeout=2)
        for q in (task_q, result_q, *setups):
            q.cancel_join_thread()
