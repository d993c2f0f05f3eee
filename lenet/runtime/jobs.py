"""Background training jobs: a thread each, run by one bounded pool shared by every user.

A job owns a lock, a stop event and an append-only record of metrics. The
worker appends; the UI reads `snapshot()` copies and never touches the model
being trained (the result is published only when the job is done). States:
queued -> running -> done | failed | stopped; a failed job keeps its error text.

Training itself runs in a worker process (`lenet.runtime.worker.in_worker`) at a lower
OS priority (`lenet.procs.TRAINING_NICE`), so it neither holds the server's GIL nor takes
the CPU from the server that answers the browsers; the job's thread only relays the
worker's records, progress, stop and result.
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

from lenet import settings

exiting = threading.Event()  # set when the server shuts down (lenet.runtime.worker ends the workers then)

QUEUED, RUNNING, DONE, FAILED, STOPPED = "queued", "running", "done", "failed", "stopped"
INTERRUPTED = "interrupted"  # queued or running when the server stopped; can be resumed
FINISHED = (DONE, FAILED, STOPPED, INTERRUPTED)


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
    result: Any = None             # the job's return value once done or stopped (a stopped run's net)

    @property
    def finished_ok(self) -> bool:
        return self.state == DONE


class Job:
    """What a worker function sees: `record`, `progress`, `stop_event`, `should_stop`."""

    def __init__(self, id: int, name: str, owner: str, fn: Callable[["Job"], Any] | None, pool: "JobPool",
                 meta: dict | None = None, spec: dict | None = None):
        self.id, self.name, self.owner, self._fn, self._pool = id, name, owner, fn, pool
        self.meta = dict(meta or {})   # what the pages show about it (kind, label, parameters)
        self.spec = spec               # how to run it again after a restart (None: not kept on disk)
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._state, self._error, self._result, self._late = QUEUED, None, None, None
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
                            self._started, self._finished, self._result if self._state in (DONE, STOPPED) else None)

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
        self._pool._persist(self, state=RUNNING, started=self._started)
        try:
            result = self._fn(self)
            state, error = (STOPPED if self.stop_event.is_set() else DONE), None
        except Exception as e:  # any failure ends the job, never the app
            if exiting.is_set():  # the server is shutting down: on disk the job stays running, so
                return             # the next start shows it interrupted, with Resume
            result, state = None, FAILED
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self._pool._log(f"job {self.id} ({self.name}) failed:\n{traceback.format_exc()}")
        with self._lock:
            self._state, self._error, self._finished = state, error, time.time()
            self._result = result if result is not None else self._late
        self._pool._persist_finish(self)
        self.done_event.set()

    def log(self, message: str) -> None:
        """A line in the server's log about this job."""
        self._pool._log(f"job {self.id} ({self.name}) {message}")

    def attach_result(self, result: Any) -> None:
        """A stopped job's result that came after it was reported stopped."""
        with self._lock:
            self._late = result
            attached = self._state == STOPPED and self._result is None
            if attached:
                self._result = result
        if attached:
            self._pool._persist_finish(self)

    def _finish_unstarted(self) -> None:
        with self._lock:
            self._state, self._finished = STOPPED, time.time()
        self._pool._persist_finish(self)
        self.done_event.set()

    def _restore(self, rec: dict, result: Any) -> None:
        """State from the store after a restart: queued or running then is interrupted now."""
        state = rec.get("state", QUEUED)
        self._state = INTERRUPTED if state in (QUEUED, RUNNING) else state
        self._error, self._records = rec.get("error"), list(rec.get("records") or [])
        self._started, self._finished, self._result = rec.get("started"), rec.get("finished"), result
        self.done_event.set()


class JobPool:
    """At most `workers` jobs run at once; the rest wait in FIFO order."""

    def __init__(self, workers: int | None = None, log: Callable[[str], None] | None = None, store=None):
        """`store` (a lenet.runtime.store.JobStore) keeps jobs submitted with a `spec` on disk; the
        jobs it holds from before are restored (queued or running ones as interrupted)."""
        self.workers = max(1, workers or default_workers())
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._jobs: dict[int, Job] = {}
        self._running = 0
        self._log = log or (lambda msg: None)
        self.store = store
        for rec in store.records() if store is not None else []:
            result = None
            if rec.get("has_result"):
                try:
                    result = store.result(rec["id"])
                except Exception as e:  # a damaged result loses the net, not the job
                    self._log(f"job {rec['id']}: its net cannot be read back ({e})")
            job = Job(rec["id"], rec.get("name", "job"), rec.get("owner", ""), None, self, rec.get("meta"),
                      rec.get("spec"))
            job._restore(rec, result)
            self._jobs[job.id] = job
        self._ids = itertools.count(max(self._jobs, default=0) + 1)

    def submit(self, fn: Callable[[Job], Any], name: str = "job", owner: str = "", *, meta: dict | None = None,
               spec: dict | None = None, nets: dict | None = None, splits: dict | None = None) -> Job:
        """Queue fn(job). With a store and a `spec` (plain JSON: how to run it again), the job is
        kept on disk with its `nets` and `splits` (name -> Net / Split), so a restart can resume it."""
        with self._lock:
            job = Job(next(self._ids), name, owner, fn, self, meta, spec)
            self._jobs[job.id] = job
        if self.store is not None and spec is not None:
            self.store.create(job.id, {"id": job.id, "name": name, "owner": owner, "meta": job.meta, "spec": spec,
                                       "state": QUEUED, "submitted": time.time()}, nets, splits)
        with self._lock:
            self._queue.append(job)
        self._dispatch()
        return job

    def forget(self, job_id: int) -> None:
        """Drop a finished job from the pool and the store (e.g. an interrupted one once resumed)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state not in FINISHED:
                return
            del self._jobs[job_id]
        if self.store is not None and job.spec is not None:
            self.store.remove(job_id)

    def _persist(self, job: Job, **fields) -> None:
        if self.store is not None and job.spec is not None:
            try:
                self.store.update(job.id, **fields)
            except OSError as e:  # a full disk must not end the training
                self._log(f"job {job.id}: cannot record its state ({e})")

    def _persist_finish(self, job: Job) -> None:
        if self.store is None or job.spec is None:
            return
        snap = job.snapshot()
        try:
            self.store.finish(job.id, snap.result, state=snap.state, error=snap.error, started=snap.started,
                              finished=snap.finished, records=snap.records)
        except Exception as e:  # as above: the job's outcome stands even if it cannot be kept
            self._log(f"job {job.id}: cannot keep its outcome ({type(e).__name__}: {e})")

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
    return settings.workers() or os.cpu_count() or 1
