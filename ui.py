"""App glue shared by the pages: session identity, per-session state, cached data and nets,
background jobs and their live panels. The science lives in lenet/; this module only wires it
to Streamlit.

A browser session is identified by `sid` in the URL (st.query_params), so a reload keeps the
same jobs, drawings and choices. Per-session state lives server-side in a process-wide dict
(st.cache_resource) keyed by that id; jobs run in one process-wide JobPool.
"""
from __future__ import annotations

import os
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from lenet import checkpoint
from lenet.config import N_CLASSES, SOURCE_RECIPE, TRANSFER_RECIPE, Recipe
from lenet.data import CharacterSet, DataError, find_emnist, load
from lenet.data.protocol import Split, default_class_split, source_split, transfer_split
from lenet.figures import training_curves
from lenet.jobs import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Job, JobPool
from lenet.net import Net, train_source, train_transfer
from lenet.preprocess import BlankImage, canvas_to_image

ROOT = Path(__file__).resolve().parent
ASSETS = ROOT / "assets"
QUICK_SOURCE = dict(per_class=100, heldout_per_class=20, max_epochs=3)  # first-start net when none ships
STEP_RECORD_SECONDS = 0.25  # at most 4 per-step loss records a second: live, but cheap


def lenet_home() -> Path:
    """Where the app keeps user work: LENET_HOME, else ~/.local/share/lenet-transfer-lab."""
    return Path(os.environ.get("LENET_HOME") or Path.home() / ".local" / "share" / "lenet-transfer-lab")


# --- session identity and state ----------------------------------------------------------

@dataclass
class SessionState:
    """What one browser session has chosen and made; survives reloads (not server restarts)."""
    data_kind: str
    data_path: str | None
    source: Net | None = None          # None: the shipped (or first-start) source net
    source_label: str = ""
    runs: dict[int, dict] = field(default_factory=dict)  # job id -> {"kind", "label", params...}
    last_drawing: np.ndarray | None = None               # (28, 28) uint8 from the Draw page
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource
def _sessions() -> dict[str, SessionState]:
    return {}


@st.cache_resource
def pool() -> JobPool:
    """The one process-wide pool; LENET_WORKERS sets its size (default: the number of cores).

    Jobs are many small nets on few cores: one intra-op thread each avoids oversubscription
    (measured on 2 busy cores: an n=4, k=5 run took 55 s with torch's 2 threads, 1.7 s with 1).
    """
    torch.set_num_threads(1)
    return JobPool()


def session_id() -> str:
    sid = st.session_state.get("sid")
    if sid is None:
        asked = st.query_params.get("sid", "")
        sid = asked if re.fullmatch(r"[0-9a-f]{32}", asked) else uuid.uuid4().hex
        st.session_state["sid"] = sid
    if st.query_params.get("sid") != sid:
        st.query_params["sid"] = sid
    return sid


def state() -> SessionState:
    sessions = _sessions()
    sid = session_id()
    if sid not in sessions:
        kind, path, _ = default_setup()
        sessions[sid] = SessionState(kind, path)
    return sessions[sid]


def session_dir(*parts: str) -> Path:
    return lenet_home().joinpath("sessions", session_id(), *parts)


# --- data and the source net ---------------------------------------------------------------

def default_setup() -> tuple[str, str | None, Path | None]:
    """(data kind, data path, shipped source net folder or None).

    LENET_DATA (synthetic | emnist | a folder/archive path) and LENET_SOURCE (a saved net)
    override; otherwise the EMNIST net when EMNIST is here, else the synthetic one.
    """
    env_data, env_source = os.environ.get("LENET_DATA", "").strip(), os.environ.get("LENET_SOURCE", "").strip()
    if env_data:
        kind, path = (env_data, None) if env_data in ("synthetic", "emnist") else ("emnist", env_data)
        shipped = ASSETS / f"source-{kind}"
        if env_source:
            return kind, path, Path(env_source)
        return kind, path, shipped if (shipped / checkpoint.WEIGHTS).exists() else None
    emnist = find_emnist() is not None
    if env_source:
        return ("emnist" if emnist else "synthetic"), None, Path(env_source)
    if emnist and (ASSETS / "source-emnist" / checkpoint.WEIGHTS).exists():
        return "emnist", None, ASSETS / "source-emnist"
    if (ASSETS / "source-synthetic" / checkpoint.WEIGHTS).exists():
        return "synthetic", None, ASSETS / "source-synthetic"
    return ("emnist" if emnist else "synthetic"), None, None


@st.cache_resource(show_spinner="Loading characters…", max_entries=4)
def dataset(kind: str, path: str | None = None) -> CharacterSet:
    return load(kind, path or None)


def current_dataset() -> CharacterSet:
    s = state()
    return dataset(s.data_kind, s.data_path)


def require_dataset() -> CharacterSet:
    """The active dataset, or an error message and the end of the page."""
    try:
        return current_dataset()
    except DataError as e:
        st.error(f"The active dataset cannot be loaded: {e}")
        st.stop()


def data_label(kind: str, path: str | None) -> str:
    return f"{kind} ({path})" if path else kind


@st.cache_resource(show_spinner="Loading the source net…")
def saved_net(path: str) -> Net:
    return checkpoint.load(path)


@st.cache_resource
def _bootstrap(kind: str, path: str | None) -> Job:
    """A quick source net for a first start with no shipped one (shared by every session)."""
    def work(job: Job) -> Net:
        ds = load(kind, path or None)
        chars = default_class_split(ds)[0]
        split = source_split(ds, chars, QUICK_SOURCE["per_class"], QUICK_SOURCE["heldout_per_class"])
        recipe = SOURCE_RECIPE.replace(max_epochs=QUICK_SOURCE["max_epochs"])
        net, _ = train_source(split, recipe, **recorders(job), stop=job.stop_event)
        return net
    return pool().submit(work, name="first-start source net", owner="")


def active_source() -> tuple[Net | None, str, Job | None]:
    """(source net or None while the first-start one trains, a label, the first-start job)."""
    s = state()
    if s.source is not None:
        return s.source, s.source_label, None
    kind, path, shipped = default_setup()
    if shipped is not None:
        return saved_net(str(shipped)), f"shipped: {shipped.name}", None
    job = _bootstrap(kind, path)
    snap = job.snapshot()
    return (snap.result, f"first-start quick net ({QUICK_SOURCE['max_epochs']} epochs)", job) if snap.state == "done" else (None, "", job)


def require_source() -> Net:
    """The active source net, or a live note about the first-start training and st.stop()."""
    net, _, job = active_source()
    if net is None:
        st.info("No pretrained source net ships with this copy, so a quick one is training now "
                "(about a minute). This page fills in when it is ready.")
        job_panel(job, "first-start source net", stop_button=False)
        st.stop()
    return net


# --- background jobs -----------------------------------------------------------------------

def recorders(job: Job) -> dict:
    """on_step / on_epoch callbacks that append to the job's record (step losses throttled)."""
    last = [0.0]

    def on_step(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_RECORD_SECONDS:
            last[0] = now
            job.record(kind="step", step=step, loss=loss)

    def on_epoch(stats) -> None:
        job.record(kind="epoch", **asdict(stats))
    return dict(on_step=on_step, on_epoch=on_epoch)


def submit(kind: str, label: str, fn, **params) -> Job:
    """Run fn(job) in the pool as this session's job, remembered under `kind`."""
    job = pool().submit(fn, name=label, owner=session_id())
    s = state()
    with s.lock:
        s.runs[job.id] = dict(kind=kind, label=label, **params)
    return job


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


def job_status(snap) -> None:
    """One line of state: queue position, progress, the error of a failed job."""
    epochs = epoch_records(snap.records)
    steps = [r for r in snap.records if r.get("kind") == "step"]
    if snap.state == QUEUED:
        st.info(f"Queued: position {snap.queue_position} (all {pool().workers} workers are busy).")
    elif snap.state == RUNNING:
        parts = [f"epoch {epochs[-1]['epoch']}" if epochs else "first epoch"]
        if steps:
            parts.append(f"step {steps[-1]['step']}, loss {steps[-1]['loss']:.3f}")
        done, total = snap.progress
        if total:
            st.progress(min(1.0, done / total), text=f"{done} / {total}")
        st.caption("Running: " + "; ".join(parts))
    elif snap.state == FAILED:
        st.error(f"Failed: {snap.error}")
    elif snap.state == STOPPED:
        st.warning(f"Stopped after {len(epochs)} epoch(s).")
    else:
        took = (snap.finished or 0) - (snap.started or 0)
        st.success(f"Done: {len(epochs)} epoch(s) in {took:.1f} s.")


def curves_chart(snap):
    epochs = epoch_records(snap.records)
    return training_curves(epochs) if epochs else None


def _draw_job(job: Job, key: str, stop_button: bool, chart=curves_chart) -> None:
    snap = job.snapshot()
    cols = st.columns([4, 1])
    with cols[0]:
        job_status(snap)
    if stop_button and snap.state not in FINISHED:
        if cols[1].button("Stop", key=f"stop-{key}-{job.id}", type="primary"):
            job.stop()
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


# --- the two kinds of training the pages start ----------------------------------------------

def start_source_training(ds: CharacterSet, chars: list[str], per_class: int, heldout: int,
                          recipe: Recipe, label: str) -> Job:
    split = source_split(ds, chars, per_class, heldout)  # bad choices raise here, before queueing

    def work(job: Job) -> Net:
        net, _ = train_source(split, recipe, **recorders(job), stop=job.stop_event)
        return net
    return submit("source", label, work, classes=list(chars), per_class=per_class)


def transfer_eval_every(n_train: int, n_test: int) -> int:
    """Test every few epochs when the training set is small, so testing never costs more than training."""
    return max(1, min(10, round(n_test / max(1, n_train))))


def start_transfer(source: Net, split: Split, n: int, recipe: Recipe, label: str, kind: str = "transfer",
                   **params) -> Job:
    overlap = sorted(set(source.classes) & set(split.classes))
    if overlap:  # checked here too so the message comes before queueing, not as a failed job
        raise ValueError(f"{' '.join(overlap)} already belong to the source net; new characters must be new")

    def work(job: Job) -> Net:
        net, _ = train_transfer(source, split, n, recipe, **recorders(job), stop=job.stop_event)
        return net
    return submit(kind, label, work, n=n, classes=list(split.classes), **params)


def transfer_recipe(max_epochs: int, n_train: int, n_test: int, seed: int) -> Recipe:
    return TRANSFER_RECIPE.replace(max_epochs=max_epochs, seed=seed,
                                   eval_every=transfer_eval_every(n_train, n_test))


def default_targets(ds: CharacterSet, source: Net) -> list[str]:
    """The paper's other 20 characters when they are free, else the first 20 the source net lacks."""
    options = [c for c in ds.classes if c not in source.classes]
    if len(ds.classes) >= 2 * N_CLASSES:
        preferred = [c for c in default_class_split(ds)[1] if c in options]
        if len(preferred) == N_CLASSES:
            return preferred
    return options[:N_CLASSES]


def make_transfer_split(ds: CharacterSet, source: Net, chars: list[str], k: int, trial: int, seed: int) -> Split:
    return transfer_split(ds, chars, k, trial=trial, seed=seed, source_classes=source.classes)


def teach_split(drawn: CharacterSet) -> Split:
    """All drawn samples train; with >= 3 samples of every character, one of each is held out to test."""
    counts = drawn.counts()
    if len(drawn.classes) < 2:
        raise DataError(f"teach at least 2 characters (you have {len(drawn.classes)} with samples)")
    if min(counts.values()) >= 3:
        test_rows = [int(np.flatnonzero(drawn.labels == i)[-1]) for i in range(len(drawn.classes))]
        train_rows = [i for i in range(len(drawn)) if i not in set(test_rows)]
        return Split(drawn.subset(train_rows), drawn.subset(test_rows), list(drawn.classes))
    return Split(drawn, drawn.subset(np.zeros(0, np.int64)), list(drawn.classes))


def finished_nets(kind: str) -> list[tuple[str, Net]]:
    """(label, net) of this session's finished jobs of one kind that produced a net."""
    out = []
    for job, meta in session_jobs(kind):
        snap = job.snapshot()
        if snap.state == "done" and isinstance(snap.result, Net):
            out.append((f"#{job.id} {meta['label']}", snap.result))
    return out


def all_nets() -> list[tuple[str, Net]]:
    """Every net this session can look at: the active source net, then transferred and taught ones."""
    nets = []
    net, label, _ = active_source()
    if net is not None:
        nets.append((f"source net ({label})", net))
    return nets + finished_nets("transfer") + finished_nets("teach")


# --- drawing ----------------------------------------------------------------------------------

CANVAS_PX = 280


def canvas(key: str):
    """A freehand canvas; returns its RGBA pixels, or None before anything is drawn.

    st_canvas is imported here, not at module level: it only imports inside a running app.
    """
    from streamlit_drawable_canvas import st_canvas
    result = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#ffffff",
                       height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw",
                       update_streamlit=True, return_image_data=True, key=key)
    objects = (result.json_data or {}).get("objects") or []
    return result.image_data if objects else None


def show_image28(image: np.ndarray, caption: str, width: int = 140) -> None:
    """A small grey image scaled up without smoothing, so the pixels stay visible."""
    from PIL import Image
    a = np.asarray(image, dtype=np.float32)
    a = (a - a.min()) / (float(a.max() - a.min()) or 1.0) * 255
    big = Image.fromarray(a.astype(np.uint8)).resize((width, width), Image.NEAREST)
    st.image(big, caption=caption, width=width)


def check_data(fn, *args, **kwargs):
    """Call fn; a DataError/ValueError becomes an st.error line and None."""
    try:
        return fn(*args, **kwargs)
    except (DataError, ValueError) as e:
        st.error(str(e))
        return None


def clear_canvas(counter_key: str) -> None:
    """on_click for a Clear button: a new canvas key gives an empty canvas."""
    st.session_state[counter_key] = st.session_state.get(counter_key, 0) + 1


def canvas_key(name: str) -> str:
    return f"{name}-{st.session_state.get(name + '-n', 0)}"


def classify(net: Net, rgba: np.ndarray, top: int = 5) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Canvas pixels -> (the 28x28 image the net gets, its top nearest characters with distances).
    Raises lenet.preprocess.BlankImage when nothing is drawn."""
    image = canvas_to_image(rgba)
    return image, net.rank(image, min(top, len(net.classes)))


def prediction_panel(net: Net, rgba: np.ndarray | None, prompt: str) -> np.ndarray | None:
    """The Prediction metric and the top 5 for a canvas; the 28x28 image, or None (no ink yet)."""
    if rgba is None:
        st.info(prompt)
        return None
    try:
        image, ranking = classify(net, rgba)
    except BlankImage as e:
        st.info(f"{e}: the canvas has no ink yet.")
        return None
    st.metric("Prediction", ranking[0][0])
    st.dataframe([{"character": c, "distance to its code": round(d, 3)} for c, d in ranking], hide_index=True)
    return image


def net_picker(key: str, label: str = "Net") -> tuple[str, Net]:
    """A selectbox over the session's nets (source first); stops the page until one exists."""
    nets = all_nets()
    if not nets:
        require_source()
    names = [n for n, _ in nets]
    choice = st.selectbox(label, names, key=key)
    return choice, dict(nets)[choice]


# --- the experiment grid ------------------------------------------------------------------------

def start_experiment(source: Net, ds: CharacterSet, targets: list[str], levels: list[int], samples: list[int],
                     trials: int, seed: int, recipe: Recipe, out_dir: Path, label: str) -> Job:
    """reproduce() in the pool; each finished run is recorded so Figure 2 fills in live."""
    from lenet import experiment
    experiment.check_grid(levels, samples, trials)  # bad choices raise here, before queueing
    experiment.check_targets(ds, targets, source.classes, max(samples))

    def work(job: Job) -> Path:
        experiment.reproduce(source, ds, targets, levels=levels, samples=samples, trials=trials, seed=seed,
                             recipe=recipe, out_dir=out_dir, fast=True, stop=job.stop_event,
                             on_result=lambda r: job.record(kind="result", **asdict(r)), progress=job.progress)
        return out_dir
    return submit("experiment", label, work, out_dir=str(out_dir))


def read_experiment(out_dir: Path) -> list:
    """The finished runs of a grid folder written by reproduce (its meta.json says which grid)."""
    import json

    from lenet import experiment
    settings = json.loads((out_dir / experiment.META).read_text())["settings"]
    cells = experiment.grid(settings["levels"], settings["samples"], settings["trials"])
    return experiment.read_runs(out_dir / experiment.RUNS, cells, settings["seed"])


def experiment_summary(snap) -> list[dict]:
    from lenet import experiment
    runs = [experiment.RunResult(**{k: v for k, v in r.items() if k != "kind"})
            for r in snap.records if r.get("kind") == "result"]
    return experiment.summarize(runs) if runs else []


def experiment_chart(snap):
    from lenet.figures import accuracy_vs_levels
    summary = experiment_summary(snap)
    return accuracy_vs_levels(summary) if summary else None


def experiment_dirs() -> list[Path]:
    """This session's finished (or partly finished) grids, newest first."""
    root = lenet_home() / "experiments" / session_id()
    return sorted((p.parent for p in root.glob("*/runs.csv")), reverse=True) if root.is_dir() else []
