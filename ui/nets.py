"""The active dataset and source net (shipped, saved, or trained on first start); fetching full EMNIST."""
from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from lenet import settings
from lenet.files import PROJECT_ROOT
from lenet.core import checkpoint
from lenet.config import SOURCE_RECIPE
from lenet.data import CharacterSet, DataError, active_set, find_emnist

from lenet.data.download import EMNIST_SIZE, EMNIST_URL, download_emnist
from lenet.data.roots import MAX_UPLOAD_MB, allowed_path, data_roots, store_upload
from lenet.runtime.jobs import Job
from lenet.runtime.worker import in_worker
from lenet.core.net import Net
from lenet.runtime.tasks import first_source_task

from .roles import require_teacher
from .session import QUICK_SOURCE, dataset, default_setup, pool, session_dir, state
from .background import job_panel


# --- data and the source net ---------------------------------------------------------------

def current_dataset() -> CharacterSet:
    s = state()
    return dataset(s.data_kind, s.data_path)


def active_data() -> tuple[str, str]:
    """Which set is active, in a few words ("full EMNIST", "EMNIST subset (shipped)", "synthetic"),
    and a line about it (where it is read from); nothing is loaded."""
    s = state()
    label, path = active_set(s.data_kind, s.data_path)
    if s.data_kind == "synthetic":
        return label, "built-in synthetic characters from handwriting fonts (not real handwriting)"
    if label.startswith("EMNIST subset"):
        return label, "real handwriting (NIST SD19): a compact EMNIST ByClass subset that ships with the app"
    return label, "real handwriting (NIST SD19), found on the server" if path else "not found on this machine"


def require_dataset() -> CharacterSet:
    """The active dataset, or an error message and the end of the page."""
    try:
        return current_dataset()
    except DataError as e:
        st.error(f"The active dataset cannot be loaded: {hide_paths(str(e))}")
        st.stop()


def browser_data_roots():
    """The server folders a browser may open datasets from (LENET_DATA_DIRS)."""
    return data_roots()


def browser_data_path(typed: str | None, upload=None) -> str:
    """A dataset path from the browser: the uploaded zip, kept in this session's folder, or a typed
    path inside the operator's data folders (or this session's uploads). Raises DataError."""
    uploads = session_dir("data")
    try:
        if upload is not None:
            return str(store_upload(upload.getvalue(), upload.name, uploads, MAX_UPLOAD_MB))
        if not (typed or "").strip():
            raise DataError("Give a folder or archive path, or upload an EMNIST zip.")
        return str(allowed_path(typed, data_roots() + [uploads]))
    except DataError as e:  # the reader names the file it read: the upload's copy in the session folder
        raise DataError(hide_paths(str(e))) from None


def hide_paths(text: str) -> str:
    """`text` with the server's own folders (LENET_HOME, LENET_CACHE, the data folders, the project,
    the user's home) replaced by words: a browser is never shown where things are on the server."""
    folders = {settings.home(): "the server's app folder", settings.cache(): "the server's cache folder",
               PROJECT_ROOT: "the app's folder", Path.home(): "a server folder",
               **{r: "a server data folder" for r in data_roots()}}
    for folder, words in sorted(folders.items(), key=lambda f: -len(str(f[0]))):  # the longest first
        for form in {str(folder), str(Path(os.path.realpath(folder)))}:
            if len(form) > 1:
                text = text.replace(form, words)
    return text


def net_bytes(net: Net) -> bytes:
    """A net as a safetensors file (about 250 KB, milliseconds), for a download button."""
    return checkpoint.to_bytes(net)


def data_label(kind: str, path: str | None) -> str:
    """"emnist (gzip.zip)": the data kind and the name of what it was read from, never the server path."""
    if not path:
        return kind
    return f"{kind} (your upload)" if Path(path).is_relative_to(session_dir("data")) else f"{kind} ({Path(path).name})"


@st.cache_resource(show_spinner="Loading the source net…")
def saved_net(path: str) -> Net:
    return checkpoint.load(path)


def emnist_download_panel() -> None:
    """Full EMNIST: where it is, or a Download button with a progress bar (a clear message offline).

    The download runs in this script run, so the bar is live; leaving the page interrupts it and
    the next click resumes from the partial file. LENET_EMNIST_URL points it elsewhere (tests).
    """
    full = find_emnist(full_only=True)
    if full is not None:
        st.caption("Full EMNIST is on this machine.")
        return
    url = settings.get("LENET_EMNIST_URL") or EMNIST_URL
    st.caption(f"Full EMNIST (814,255 characters) is not on this machine; the shipped subset stands in for it. "
               f"The download is {EMNIST_SIZE / 1e6:.0f} MB from NIST, kept on the server for every session.")
    if not st.button("Download full EMNIST", key="dl-emnist", help="Fetch the full set once; it then replaces "
                                                                     "the subset for everyone on this server."):
        return
    if not require_teacher("download full EMNIST to the server"):
        return
    bar = st.progress(0.0, text="Connecting…")
    last = [0.0]

    def progress(have: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.25 or have >= total:  # a few updates a second are live enough
            last[0] = now
            bar.progress(min(have / total, 1.0) if total else 0.0,
                         text=f"{have / 1e6:,.1f} of {total / 1e6:,.1f} MB" if total else f"{have / 1e6:,.1f} MB")
    try:
        download_emnist(None, url, EMNIST_SIZE if url == EMNIST_URL else None, progress)
    except (DataError, OSError) as e:
        bar.empty()
        st.error(f"Could not download EMNIST: {hide_paths(str(e))}. Nothing changed: the active dataset is still "
                 f"{active_data()[0]}. Where this machine cannot reach {url}, fetch gzip.zip elsewhere and put it "
                 f"in the server's EMNIST cache folder (LENET_CACHE/emnist), or give its path above.")
        return
    s = state()
    s.data_kind, s.data_path = "emnist", None
    st.success("Downloaded full EMNIST; it is the active dataset now.")


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
