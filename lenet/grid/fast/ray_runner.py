"""The grid's task groups on a Ray cluster instead of local worker processes.

The same interface as `pool.run_in_processes`: tasks in, each run's `Finished` out as its
task ends, `stop` seen within POLL seconds. A task is a pure function of its data (the
shared source net and test set, put in the object store once, and its runs' training
sets), as Ray Tune treats a trial, so a task that ran on a worker that died is simply run
again (Ray's max_retries) and gives the same results. Results equal a local run with the
same plan: the same groups train the same way, only on other machines.

Ray is optional (requirements-ray.txt). The cluster's nodes need this project's
requirements; the `lenet` package itself travels with the job (runtime_env py_modules).
"""
from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

from lenet import settings
from lenet.core.train import TrainingError
from lenet.grid.fast.group import Finished
from lenet.procs import POLL, WorkerError
from lenet.grid.fast.work import Shared, Task, run_task

MAX_RETRIES = 3     # times a task is run again after its worker (or node) died
ENV = "LENET_RAY"   # the app's (and the CLI's default) cluster address


def address_from_env(address: str | None) -> str | None:
    """The address to use: the argument, else LENET_RAY; "" or unset means local processes."""
    address = settings.ray_address() if address is None else address
    return (address.strip() or None) if address else None


def _ray():
    try:
        import ray
    except ImportError:
        raise ValueError("running on a Ray cluster needs Ray: pip install -r requirements-ray.txt") from None
    return ray


def connect(address: str):
    """ray, connected to the cluster at `address` (host:port of its head, ray://host:10001, auto or
    local for a one-machine cluster started here); an existing connection is reused."""
    ray = _ray()
    if not ray.is_initialized():
        _check_reachable(address)
        package = str(Path(__file__).resolve().parents[1])
        try:
            here = {"include_dashboard": False, "_node_ip_address": "127.0.0.1"} if address == "local" else {}
            ray.init(address=address, runtime_env={"py_modules": [package]}, log_to_driver=False,
                     logging_level="warning", **here)
        except ConnectionError as e:
            raise ValueError(f"cannot reach the Ray cluster at {address!r}: {' '.join(str(e).split())}") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes (Ray retries an unreachable head for a long time)."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"Ray address {address!r}: use host:port of the head, ray://host:10001, auto or local")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ValueError(f"cannot reach the Ray cluster at {address!r}: {e.strerror or e}") from None


def cluster_cpus(address: str) -> int:
    return max(1, int(connect(address).cluster_resources().get("CPU", 1)))


def _run(shared: Shared, task: Task) -> list[Finished]:
    import torch

    torch.set_num_threads(1)
    return list(run_task(shared, task, lambda: False))


def run_on_ray(shared: Shared, tasks: list[Task], address: str, stop: threading.Event | None) -> Iterator[Finished]:
    ray = connect(address)
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_run)
    shared_ref = ray.put(shared)
    refs = [remote.remote(shared_ref, t) for t in sorted(tasks, key=lambda t: -t.cost)]
    for _, results in _gather(ray, refs, stop):
        yield from results


def _call(fn, shared, task):
    import torch

    torch.set_num_threads(1)
    return fn(shared, task)


def run_calls_on_ray(fn, shared: dict, tasks: list[dict], order: list[int], address: str,
                     stop: threading.Event | None) -> Iterator[tuple[int, dict]]:
    """(index, fn(shared, tasks[index])) for every task as it ends, each call a Ray task (a study's
    runs: `lenet.studies.runner.run_tasks` with a cluster address). Same retries and stop as above."""
    ray = connect(address)
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_call)
    shared_ref = ray.put(shared)
    refs = [remote.remote(fn, shared_ref, tasks[i]) for i in order]
    index = {ref: i for ref, i in zip(refs, order)}
    for ref, result in _gather(ray, refs, stop):
        yield index[ref], result


def _gather(ray, pending: list, stop: threading.Event | None) -> Iterator[tuple]:
    """(ref, value) of each task as it ends; stop (seen within POLL s) cancels the rest. A task's
    TrainingError is raised as the plain path raises it, any other failure as a WorkerError."""
    try:
        while pending:
            if stop is not None and stop.is_set():
                return
            ready, pending = ray.wait(pending, num_returns=1, timeout=POLL)
            for ref in ready:
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, TrainingError):  # the same error the plain path raises
                        raise TrainingError(str(cause)) from None
                    raise WorkerError(f"a Ray task failed: {' '.join(str(cause or e).split())[:2000]}") from None
                yield ref, value
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
