"""One finished run looked at closely: what it misread, and taking it home (the net as safetensors or
ONNX, a one-page HTML summary of the run)."""
from __future__ import annotations

import json

import streamlit as st

from lenet.core import export
from lenet.core.net import Net
from lenet.data import CharacterSet
from lenet.report.summary import run_summary_html
from lenet.runtime.jobs import Job

from .background import epoch_records, job_panel, session_jobs
from .confusion import show_confusion
from .nets import net_bytes
from .session import pool
from .training import finished_runs, start_transfer


def run_test_set(job: Job) -> CharacterSet | None:
    """The characters a run was tested on, as its job keeps them (None where the store has none)."""
    try:
        return pool().store.split(job.id, "split").test
    except (OSError, ValueError, KeyError):
        return None


def run_settings(label: str, net: Net, job: Job) -> dict:
    """What made the run, in words, for its summary."""
    m, meta = net.meta, job.meta
    recipe = m.get("recipe", {})
    pct = lambda v: f"{v:.1%}" if isinstance(v, (int, float)) and v == v else "–"
    return {"run": label, "new characters": " ".join(net.classes), "retained levels n": net.retained,
            "samples per class k": meta.get("k", m.get("k", "–")), "trial": meta.get("trial", "–"),
            "source net's characters": " ".join(m.get("source_classes", [])) or "–",
            "data": m.get("data_description", m.get("data", "–")),
            "training accuracy": pct(m.get("train_acc")), "test accuracy": pct(m.get("test_acc")),
            "epochs": m.get("epochs", "–"), "recipe": json.dumps(recipe, sort_keys=True)}


def run_details(kind: str, label: str, key: str, what: str = "test characters", fallback_train: bool = False) -> None:
    """The run called `label` among this session's finished runs of `kind`: per-class accuracy and the
    confusion matrix on its test characters (with `fallback_train`, on its training samples where it
    has no test ones, as a Teach run on few drawings), then its downloads."""
    found = {lab: (net, job) for lab, net, job in finished_runs(kind)}
    if label not in found:
        return
    net, job = found[label]
    test = run_test_set(job)
    if fallback_train and test is not None and not len(test):
        try:
            test, what = pool().store.split(job.id, "split").train, "drawings it trained on"
        except (OSError, ValueError, KeyError):
            test = None
    conf = show_confusion(net, test, key, what) if test is not None else None
    if test is None:
        st.caption("This run's test characters are no longer on the server: no confusion matrix.")
    records = epoch_records(job.snapshot().records)
    missing = export.missing()
    row = st.container(horizontal=True)
    row.download_button("Download the net (safetensors)", net_bytes(net), f"{kind}-net.safetensors", key=f"{key}-dl",
                        help="The weights with the characters and target codes: Source net's 'Load' reads it.")
    row.download_button("Download the net (ONNX)", lambda: export.to_onnx(net), f"{kind}-net.onnx",
                        mime="application/octet-stream", key=f"{key}-onnx", disabled=bool(missing),
                        help=f"Needs the {missing} package on the server." if missing else
                        "For onnxruntime and other ONNX readers: 28x28 uint8 characters in, the distance to each "
                        "character's code out; the characters are in the file's metadata.")
    row.download_button("Download a one-page summary (HTML)",
                        lambda: run_summary_html(label, run_settings(label, net, job), records, conf, what),
                        f"{kind}-summary.html", mime="text/html", key=f"{key}-summary",
                        help="Its settings, training curves, accuracy per character and confusion matrix on one "
                             "page that opens offline; print it from the browser for a PDF.")


def grid_run_closer(out_dir, key: str, ds: CharacterSet) -> None:
    """Experiments: the grid keeps scores, not nets; one of its runs is trained again here (as a Transfer
    job: the same class split, samples, source net, recipe and seed) to see what it misread."""
    from lenet.config import Recipe
    from lenet.data.protocol import transfer_split
    from lenet.grid import experiment
    from lenet.grid.cells import TEST_PER_CLASS, Cell, run_seed
    splits = experiment.read_splits(out_dir)
    runs = [(seed, r) for seed, (_, rs) in splits.items() for r in sorted(rs, key=lambda r: (r.k, r.n, r.trial))]
    if not runs:
        return
    pick = st.selectbox("A run of this grid", range(len(runs)), key=f"{key}-run",
                        format_func=lambda i: f"split {runs[i][0]}: n = {runs[i][1].n}, k = {runs[i][1].k}, trial "
                                              f"{runs[i][1].trial} (test accuracy {runs[i][1].test_acc:.1%})",
                        help="The grid keeps each run's scores, not its net: the run is trained again, the same way, "
                             "to look at what it misread (it then also shows on the Transfer page).")
    if st.button("Train it again and show what it misread", key=f"{key}-again"):
        seed, r = runs[pick]
        settings = splits[seed][0]["settings"]
        owner = next((j for j, m in session_jobs("experiment") if m.get("out_dir") == str(out_dir)), None)
        if owner is None or settings["data"] != ds.source:
            st.error("This grid's source net or characters are not at hand (the grid is not this session's, or the "
                     "active data set changed since): it cannot be trained again the same way here.")
        else:
            source = pool().store.net(owner.id, "source")
            split = transfer_split(ds, settings["target_classes"], r.k, r.trial, seed, TEST_PER_CLASS,
                                   source_classes=source.classes)
            recipe = Recipe.from_dict(settings["recipe"]).replace(seed=run_seed(seed, Cell(r.n, r.k, r.trial)))
            job = start_transfer(source, split, r.n, recipe, f"grid split {seed}: n={r.n} k={r.k} trial {r.trial}, "
                                 f"again (the grid: {r.test_acc:.1%})", k=r.k, trial=r.trial)
            st.session_state[f"{key}-job"] = job.id
    mine = [(j, m) for j, m in session_jobs("transfer") if j.id == st.session_state.get(f"{key}-job")]
    if mine:
        job, meta = mine[0]
        done = {j.id: label for label, _, j in finished_runs("transfer")}
        if job.id not in done:
            job_panel(job, f"{key}-panel")
        else:
            run_details("transfer", done[job.id], key)
