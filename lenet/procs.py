"""Processes: training at low priority, and the one relay that runs work on worker processes.

Workers come from a `forkserver`: a clean process, started once, that has imported torch and
the engine, forks each worker in milliseconds and is safe to use from any thread (a Streamlit
session included), unlike forking the threaded caller itself. Everything large travels through
queues, so starting a worker never blocks and a stop is seen within POLL seconds.
"""
from __future__ import annotations

import contextlib
import importlib.machinery
import multiprocessing as mp
import os
import queue
import sys
import threading
from typing import Callable, Iterator

POLL = 0.1          # seconds between checks of a stop event while waiting for workers
TRAINING_NICE = 10  # training processes run at least this nice (the server at its own, usually 0)


class WorkerError(RuntimeError):
    """A worker process died or failed in a way that cannot be shown as its own error."""


def lower_priority() -> None:
    """Run this process at niceness TRAINING_NICE (never raise it): the server comes first."""
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < TRAINING_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, TRAINING_NICE)
    except OSError:  # not permitted here: run at the inherited priority
        pass


def forkserver(preload: list[str]):
    """The forkserver context (safe from any thread), `preload` imported once in its server."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    return ctx


def relay(worker: Callable, setup, tasks: list, workers: int, stop: threading.Event | None, who: str,
          preload: list[str], errors: dict[str, type[Exception]] | None = None) -> Iterator:
    """Every "result" payload of `workers` forkserver processes running worker(setup_q, task_q, result_q),
    as they come: each gets `setup` once, then pulls `tasks` in order until a None. A worker puts
    ("result", x) for each result, ("done", None) at the end, or ("error", (name, message, traceback)).
    `stop` is seen within POLL s; every worker is terminated on the way out. The fast path's and the
    studies' (`lenet.studies.runner`) use it; `who` names them in errors, and a worker's error whose
    type is named in `errors` is raised as that type (the same error the plain path raises)."""
    ctx = forkserver(preload)
    task_q, result_q = ctx.Queue(), ctx.Queue()
    setups = [ctx.Queue() for _ in range(workers)]
    for q in setups:
        q.put(setup)
    for t in tasks:
        task_q.put(t)
    for _ in range(workers):
        task_q.put(None)
    procs = [ctx.Process(target=worker, args=(q, task_q, result_q), daemon=True) for q in setups]
    lock, started, closing, failed = threading.Lock(), [], [False], []

    def start_all() -> None:
        # The first start waits for the forkserver to import torch (seconds): not on the stop path.
        for p in procs:
            with lock:
                if closing[0]:
                    return
            try:
                with workers_skip_main():
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
                    raise WorkerError(f"the {who} worker processes could not start: {failed[0]}")
                if dead:
                    codes = sorted({p.exitcode for p in started}, key=str)
                    raise WorkerError(f"the {who} worker processes exited without finishing their work "
                                      f"(exit codes {codes})")
                continue
            if kind == "result":
                yield payload
            elif kind == "done":
                running -= 1
            else:
                name, message, trace = payload
                if errors and name in errors:
                    raise errors[name](message)
                raise WorkerError(f"a {who} worker failed: {name}: {message}\n{trace}")
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



@contextlib.contextmanager
def workers_skip_main():
    """Start workers without importing the caller's script in them.

    Python's multiprocessing makes each new process import the `__main__` script first, so a
    script that calls reproduce() at its top level, without `if __name__ == "__main__":`, would
    run again in every worker. The workers need nothing from the script (their work is plain
    data and lenet functions), so while they start, __main__ is described by a module spec
    named "__main__", which multiprocessing never imports, as with `python -m`.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None


