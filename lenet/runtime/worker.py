"""Running a job's training in a worker process: `in_worker(target, ...)` is a job function
(for `JobPool.submit`) that runs target(link, ...) in a fresh process from the forkserver, at
OS priority `lenet.procs.TRAINING_NICE`, and relays its records, progress, stop and result to
the Job. Stop reaches the worker within POLL s; a killed server never leaves training behind.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
import traceback
from typing import Any, Callable

from lenet.procs import POLL, WorkerError, forkserver, lower_priority
from lenet.runtime.jobs import Job, exiting

STOP_GRACE = 0.6     # seconds a stopped job waits for its worker's net before it reports stopped
LATE_RESULT = 30.0   # seconds a slow worker may still take to hand back a stopped run's net


# --- training in a worker process ---------------------------------------------------------------

class _StopSignal:
    """The worker's view of its job's stop event: set by a "stop" message or when the server is gone
    (its end of the pipe closed), so a killed server never leaves training behind."""

    def __init__(self, conn):
        self._conn, self._set, self._lock = conn, False, threading.Lock()

    def is_set(self) -> bool:
        if not self._set:
            with self._lock:
                try:
                    while self._conn.poll():
                        if self._conn.recv() == "stop":
                            self._set = True
                except (EOFError, OSError):
                    self._set = True
        return self._set


class WorkerLink:
    """What a job function running in a worker process sees: the Job's worker interface."""

    def __init__(self, conn):
        self._conn, self._send_lock = conn, threading.Lock()
        self.stop_event = _StopSignal(conn)

    def _send(self, kind: str, payload) -> None:
        with self._send_lock:
            self._conn.send((kind, payload))

    def record(self, **metrics) -> None:
        self._send("record", metrics)

    def progress(self, done: int, total: int) -> None:
        self._send("progress", (done, total))

    def should_stop(self) -> bool:
        return self.stop_event.is_set()


def _worker_main(conn, call: bytes) -> None:
    import pickle

    import torch
    lower_priority()
    torch.set_num_threads(1)  # many small nets on few cores: one intra-op thread each
    link = WorkerLink(conn)
    try:
        target, args, kwargs = pickle.loads(call)
        # plain pickle, not multiprocessing's: that would pass tensors as shared memory,
        # which vanishes when this process ends, before the server has read them
        link._send("result", pickle.dumps(target(link, *args, **kwargs)))
    except Exception as e:  # sent whole when it pickles, so the job shows its own type and words
        try:
            pickle.dumps(e)
            err = e
        except Exception:
            err = WorkerError(f"{type(e).__name__}: {e}")
        try:
            link._send("error", (err, traceback.format_exc()))
        except OSError:
            pass
    finally:
        conn.close()


_live: set = set()
_live_lock = threading.Lock()


@atexit.register
def _end_workers() -> None:
    """At exit the server's workers end with it (they are not daemons: a grid's worker has workers)."""
    exiting.set()
    with _live_lock:
        procs = list(_live)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(2)


def _context():
    return forkserver(["lenet.grid.fast.local", "lenet.runtime.tasks"])  # torch and the engine, imported once


def prestart() -> None:
    """Start the forkserver now (it imports torch: seconds), so the first job does not wait for it."""
    p = _context().Process(target=os.getpid)
    p.start()
    p.join()


def in_worker(target: Callable[..., Any], *args, **kwargs) -> Callable[[Job], Any]:
    """A job function that runs `target(link, *args, **kwargs)` in a fresh worker process.

    `target` must be a module-level function and its arguments picklable; `link` has the Job's
    worker interface (record, progress, stop_event, should_stop). The job's thread relays the
    records. Stop reaches the worker within POLL s; the job reports stopped once the worker hands
    back its result (a stopped run's net), or after STOP_GRACE s, the net then attached when it
    comes (within LATE_RESULT s). A worker stopped before it reported anything is terminated.
    """
    def run(job: Job) -> Any:
        return _relay(job, target, args, kwargs)
    run.__name__ = getattr(target, "__name__", "run")
    return run


def _relay(job: Job, target, args, kwargs) -> Any:
    if job.stop_event.is_set():
        return None
    import pickle
    ctx = _context()
    here, there = ctx.Pipe(duplex=True)
    call = pickle.dumps((target, args, kwargs))  # plain pickle: see _worker_main
    proc = ctx.Process(target=_worker_main, args=(there, call), name=f"lenet-job-{job.id}")
    proc.start()
    there.close()
    with _live_lock:
        _live.add(proc)
    stop_sent_at, heard, handed_over = None, False, False
    try:
        while True:
            if job.stop_event.is_set() and not heard:
                return None  # stopped before the worker reported anything: nothing worth waiting for
            if job.stop_event.is_set() and stop_sent_at is None:
                stop_sent_at = time.monotonic()
                try:
                    here.send("stop")
                except OSError:
                    pass
            if stop_sent_at is not None and time.monotonic() - stop_sent_at > STOP_GRACE:
                # Stopped now, as promised; a slow (niced, busy) worker still hands its net over later.
                threading.Thread(target=_late_result, args=(job, proc, here), daemon=True).start()
                handed_over = True
                return None
            try:
                if not here.poll(POLL):
                    continue
                kind, payload = here.recv()
                heard = True
            except (EOFError, OSError):
                if job.stop_event.is_set():
                    return None
                proc.join(1)
                raise WorkerError(f"the training process ended unexpectedly (exit code {proc.exitcode})") from None
            if kind == "result":
                return pickle.loads(payload)
            if kind == "error":
                err, trace = payload
                job.log(f"failed in its worker:\n{trace}")
                raise err
            _relay_message(job, kind, payload)
    finally:
        if not handed_over:
            _end(proc, here)


def _relay_message(job: Job, kind: str, payload) -> None:
    if kind == "record":
        job.record(**payload)
    elif kind == "progress":
        job.progress(*payload)


def _late_result(job: Job, proc, conn) -> None:
    """After a stop: wait up to LATE_RESULT s for a slow worker's result and attach it to the job."""
    import pickle
    end = time.monotonic() + LATE_RESULT
    try:
        while time.monotonic() < end:
            if not conn.poll(POLL):
                continue
            kind, payload = conn.recv()
            if kind == "result":
                job.attach_result(pickle.loads(payload))
                return
            if kind == "error":
                return
            _relay_message(job, kind, payload)
    except (EOFError, OSError):
        pass
    finally:
        _end(proc, conn)


def _end(proc, conn) -> None:
    if proc.is_alive():
        proc.join(0.2)
    if proc.is_alive():
        proc.terminate()
        proc.join(2)
    conn.close()
    with _live_lock:
        _live.discard(proc)
