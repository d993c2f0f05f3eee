"""Background jobs as the pages see them: submit, per-session lists, live panels."""
from __future__ import annotations

import streamlit as st

from lenet.config import Recipe
from lenet.core.train import why_stopped
from lenet.report.figures import training_curves
from lenet.runtime.jobs import FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, STOPPED, Job
from lenet.runtime.tasks import NEEDS, job_function

from .roles import within_quota
from .session import dataset, pool, session_id, state


# --- background jobs -----------------------------------------------------------------------

def submit(kind: str, label: str, fn, spec: dict | None = None, nets: dict | None = None,
           splits: dict | None = None, **params) -> Job:
    """Run fn(job) in the pool as this session's job, remembered under `kind`; with a spec it is kept
    on disk (see lenet.runtime.store) so that a restart shows it and can resume it."""
    meta = dict(kind=kind, label=label, **params)
    job = pool().submit(fn, name=label, owner=session_id(), meta=meta, spec=spec, nets=nets, splits=splits)
    s = state()
    with s.lock:
        s.runs[job.id] = meta
    return job


def resume(job: Job) -> Job:
    """Run an interrupted job again from what the store kept: a grid goes on from its finished runs
    (reproduce resumes its out_dir), a training starts over. The interrupted entry is dropped."""
    store = pool().store
    net_names, split_names = NEEDS[job.spec["task"]]
    nets = {name: store.net(job.id, name) for name in net_names}
    splits = {name: store.split(job.id, name) for name in split_names}
    meta = dict(job.meta)
    new = submit(meta.pop("kind"), meta.pop("label"), job_function(job.spec, nets, splits, load=dataset),
                 spec=job.spec, nets=nets, splits=splits, **meta)
    pool().forget(job.id)
    with state().lock:
        state().runs.pop(job.id, None)
    return new


def session_jobs(kind: str) -> list[tuple[Job, dict]]:
    """This session's jobs of one kind, oldest first (the pool only shows a session its own)."""
    s, sid = state(), session_id()
    out = []
    for job_id, meta in sorted(s.runs.items()):
        job = pool().get(job_id, owner=sid)
        if job is not None and meta["kind"] == kind:
            out.append((job, meta))
    return out


def epoch_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("kind") == "epoch"]


def job_label(job: Job, meta: dict) -> str:
    """"Run 3: n=4 k=5 trial 0": the job's number among this session's jobs (the pool's ids are shared
    by every session, so they would start at #4 for a newcomer) and its label."""
    runs = sorted(state().runs)
    return f"Run {runs.index(job.id) + 1}: {meta['label']}" if job.id in runs else meta["label"]


def job_title(job: Job, meta: dict) -> str:
    return f"**{job_label(job, meta)}**"


def _recipe(job: Job) -> Recipe | None:
    spec = job.spec or {}
    return Recipe.from_dict(spec["recipe"]) if "recipe" in spec and spec.get("task") not in ("experiment", "readout") \
        else None


def job_status(job: Job, snap) -> None:
    """One line of state that counts what happened: epochs of at most how many and why training
    ended, or runs of a grid or study finished; the queue position, the error of a failed job."""
    epochs = epoch_records(snap.records)
    done, total = snap.progress
    recipe = _recipe(job)
    if snap.state == QUEUED:
        st.info(f"Queued: position {snap.queue_position} (all {pool().workers} workers are busy).")
    elif snap.state == RUNNING:
        if total:  # a grid or a study: runs
            st.progress(min(1.0, done / total), text=f"Running: {done} of {total} runs finished")
        elif recipe is not None:
            at = epochs[-1]["epoch"] if epochs else 0
            st.progress(min(1.0, at / recipe.max_epochs),
                        text=f"Running: epoch {at} of at most {recipe.max_epochs}" + _early(recipe))
        else:
            st.caption(f"Running: {len(epochs)} epoch(s) finished")
    elif snap.state == FAILED:
        st.error(f"Failed: {snap.error}")
    elif snap.state == INTERRUPTED:
        st.warning("Interrupted: the server restarted while this job was queued or running. Resume runs it "
                   "again (a grid goes on from its finished runs).")
    elif snap.state == STOPPED:
        st.warning(f"Stopped by hand after {_amount(snap)}.")
    elif (job.spec or {}).get("task") == "readout" and epochs:  # one reading, no epochs to count
        acc = epochs[-1]["test_acc"]
        st.success(f"Done: read out by {job.spec['readout']} in {(snap.finished or 0) - (snap.started or 0):.1f} s"
                   + ("." if acc is None else f": test accuracy {acc:.1%}."))
    else:
        took = (snap.finished or 0) - (snap.started or 0)
        why = f" It ended because {why_stopped(epochs, recipe)}." if recipe is not None and epochs else ""
        st.success(f"Done: {_amount(snap)} in {took:.1f} s.{why}")


def _early(recipe: Recipe) -> str:
    if recipe.target_train_loss > 0:
        return f" (it stops early once the training loss is at most {recipe.target_train_loss:g})"
    if recipe.target_train_acc <= 1:
        return f" (it stops early at {recipe.target_train_acc:.1%} training accuracy)"
    return ""


def _amount(snap) -> str:
    """What a job got through: finished runs of a grid or study, epochs of a training run."""
    done, total = snap.progress
    runs = sum(r.get("kind") == "result" for r in snap.records)
    if total:
        done = max(runs, done)
        return f"{total} run(s)" if done == total else f"{done} of {total} run(s)"
    n = len(epoch_records(snap.records))
    return f"{n} epoch{'s' if n != 1 else ''}"


def curves_chart(snap):
    epochs = epoch_records(snap.records)
    return training_curves(epochs) if epochs else None


def _may_resume() -> bool:
    """A resumed job counts against a student's quota like a new one."""
    return within_quota(1)


def _draw_job(job: Job, key: str, stop_button: bool, chart=curves_chart) -> None:
    snap = job.snapshot()
    cols = st.columns([4, 1])
    with cols[0]:
        job_status(job, snap)
    if stop_button and snap.state not in FINISHED:
        if cols[1].button("Stop", key=f"stop-{key}-{job.id}", type="primary"):
            job.stop()
    if snap.state == INTERRUPTED and job.spec is not None:
        if cols[1].button("Resume", key=f"resume-{key}-{job.id}", type="primary") and _may_resume():
            resume(job)
            st.rerun()
    fig = chart(snap)
    if fig is not None:
        st.plotly_chart(fig, key=f"chart-{key}-{job.id}")


@st.fragment(run_every=1.0)
def _live_job(job_id: int, key: str, stop_button: bool, chart) -> None:
    job = pool().get(job_id)
    _draw_job(job, key, stop_button, chart)
    if job.snapshot().state in FINISHED:
        st.rerun()  # one full rerun swaps this poller for the static view and refreshes results


def job_panel(job: Job, key: str, stop_button: bool = True, chart=curves_chart) -> None:
    """A job's state and chart(snapshot): polled once a second while it runs, static once finished."""
    if job.snapshot().state in FINISHED:
        _draw_job(job, key, stop_button, chart)
    else:
        _live_job(job.id, key, stop_button, chart)
