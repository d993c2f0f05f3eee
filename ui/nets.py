"""The active dataset and source net (shipped, saved, or trained on first start)."""
from __future__ import annotations

import streamlit as st

from lenet import checkpoint
from lenet.config import SOURCE_RECIPE
from lenet.data import CharacterSet, DataError, load
from lenet.data.roots import MAX_UPLOAD_MB, allowed_path, data_roots, store_upload
from lenet.jobs import Job, in_worker
from lenet.net import Net
from lenet.tasks import first_source_task

from .session import QUICK_SOURCE, default_setup, pool, session_dir, state
from .jobs import job_panel


# --- data and the source net ---------------------------------------------------------------

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


def browser_data_roots():
    """The server folders a browser may open datasets from (LENET_DATA_DIRS)."""
    return data_roots()


def browser_data_path(typed: str | None, upload=None) -> str:
    """A dataset path from the browser: the uploaded zip, kept in this session's folder, or a typed
    path inside the operator's data folders (or this session's uploads). Raises DataError."""
    uploads = session_dir("data")
    if upload is not None:
        return str(store_upload(upload.getvalue(), upload.name, uploads, MAX_UPLOAD_MB))
    if not (typed or "").strip():
        raise DataError("Give a folder or archive path, or upload an EMNIST zip.")
    return str(allowed_path(typed, data_roots() + [uploads]))


def net_bytes(net: Net) -> bytes:
    """A net as a safetensors file (about 250 KB, milliseconds), for a download button."""
    return checkpoint.to_bytes(net)


def data_label(kind: str, path: str | None) -> str:
    return f"{kind} ({path})" if path else kind


@st.cache_resource(show_spinner="Loading the source net…")
def saved_net(path: str) -> Net:
    return checkpoint.load(path)


@st.cache_resource
def _bootstrap(kind: str, path: str | None) -> Job:
    """A quick source net for a first start with no shipped one (shared by every session)."""
    recipe = SOURCE_RECIPE.replace(max_epochs=QUICK_SOURCE["max_epochs"])
    work = in_worker(first_source_task, kind, path, QUICK_SOURCE["per_class"], QUICK_SOURCE["heldout_per_class"],
                     recipe)
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
