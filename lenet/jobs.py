"""Background training jobs: a thread each, run by one bounded pool shared by every user.

A job owns a lock, a stop event and an append-only record of metrics. The
worker appends; the UI reads `snapshot()` copies and never touches the model
being trained (the result is published only when the job is done). States:
queued -> running -> done | failed | stopped; a failed job keeps its error text.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

QUEUED, RUNNING, DONE, FAILED, STOPPED = "queued", "running", "done", "failed", "stopped"
FINISHED = (DONE, FAILED, STOPPED)


@dataclass
class Snapshot:
    id: int
    name: str
    owner: str
    state: str
    error: str | None
    records: list[dict]            # copies of every record so far, oldest first
    progress: tuple[int, int]      # (done, total) units of work, as the job reports it
    queue_position: int | None     # 1 = next to start; None unless queued
    started: float | None
    finished: float | None
    result: Any = None             # the job's return value once done

    @property
    def finished_ok(self) -> bool:
        return self.state == DONE


class Job:
    """What a worker function sees: `record`, `progress`, `stop_event`, `should_stop`."""

    def __init__(self, id: int, name: str, owner: str, fn: Callable[["Job"], Any], pool: "JobPool"):
        self.id, self.name, self.owner, self._fn, self._pool = id, name, owner, fn, pool
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._state, self._error, self._result = QUEUED, None, None
        self._progress = (0, 0)
        self._started = self._finished = None
        self.done_event = threading.Event()

    # --- called from the worker thread -------------------------------------------------
    def record(self, **metrics) -> None:
        with self._lock:
            self._records.append(dict(metrics))

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            self._progress = (done, total)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    # --- called from anywhere ----------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()
        self._pool._cancel_if_queued(self)

    def snapshot(self, since: int = 0) -> Snapshot:
        with self._lock:
            return Snapshot(self.id, self.name, self.owner, self._state, self._error,
                            [dict(r) for r in self._records[since:]], self._progress,
                            self._pool._position(self) if self._state == QUEUED else None,
                            self._started, self._finished, self._result if self._state == DONE else None)

    @property
    def state(self) -> str:
        return self._state

    def wait(self, timeout: float | None = None) -> bool:
        return self.done_event.wait(timeout)

    def _run(self) -> None:
        with self._lock:
            if self._state != QUEUED:
                return
            self._state, self._started = RUNNING, time.time()
        try:
            result = self._fn(self)
            state, error = (STOPPED if self.stop_event.is_set() else DONE), None
        except Exception as e:  # any failure ends the job, never the app
            result, state = None, FAILED
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self._pool._log(f"job {self.id} ({self.name}) failed:\n{traceback.format_exc()}")
        with self._lock:
            self._state, self._error, self._finished = state, error, time.time()
            self._result = result
        self.done_event.set()

    def _finish_unstarted(self) -> None:
        with self._lock:
            self._state, self._finished = STOPPED, time.time()
        self.done_event.set()


class JobPool:
    """At most `workers` jobs run at once; the rest wait in FIFO order."""

    def __init__(self, workers: int | None = None, log: Callable[[str], None] | None = None):
        self.workers = max(1, workers or default_workers())
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._jobs: dict[int, Job] = {}
        self._running = 0
        self._log = log or (lambda msg: None)

    def submit(self, fn: Callable[[Job], Any], name: str = "job", owner: str = "") -> Job:
        with self._lock:
            job = Job(next(self._ids), name, owner, fn, self)
            self._jobs[job.id] = job
            self._queue.append(job)
        self._dispatch()
        return job

    def jobs(self, owner: str | None = None) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if owner is None or j.owner == owner]

    def get(self, job_id: int, owner: str | None = None) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and (owner is None or job.owner == owner) else None

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def _position(self, job: Job) -> int | None:
        try:
            return list(self._queue).index(job) + 1
        except ValueError:
            return None

    def _cancel_if_queued(self, job: Job) -> None:
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
            else:
                return
        job._finish_unstarted()

    def _dispatch(self) -> None:
        with self._lock:
            while self._running < self.workers and self._queue:
                job = self._queue.popleft()
                self._running += 1
                threading.Thread(target=self._work, args=(job,), name=f"lenet-job-{job.id}",
                                 daemon=True).start()

    def _work(self, job: Job) -> None:
        try:
            job._run()
        finally:
            with self._lock:
                self._running -= 1
            self._dispatch()


def default_workers() -> int:
    """LENET_WORKERS, else the number of cores."""
    env = os.environ.get("LENET_WORKERS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LENET_WORKERS must be a positive integer (got {env!r})") from None
        if n < 1:
            raise ValueError(f"LENET_WORKERS must be a positive integer (got {env!r})")
        return n
    return os.cpu_count() or 1
