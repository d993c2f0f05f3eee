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

from .background import epoch_records
from .confusion import show_confusion
from .nets import net_bytes
from .session import pool
from .training import finished_runs


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
