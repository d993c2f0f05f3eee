"""Session identity and per-session state, the shared job pool, where user work lives."""
from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from lenet import settings
from lenet.core import checkpoint
from lenet.data import CharacterSet, find_emnist, load
from lenet.runtime.jobs import JobPool
from lenet.runtime.worker import prestart
from lenet.runtime.store import JobStore
from lenet.core.net import Net


QUICK_SOURCE = dict(per_class=100, heldout_per_class=20, max_epochs=3)  # first-start net when none ships


# --- session identity and state ----------------------------------------------------------

@dataclass
class SessionState:
    """What one browser session has chosen and made; survives reloads. A restart keeps its jobs
    (lenet.runtime.store) and files, not its choices (dataset, active source net)."""
    data_kind: str
    data_path: str | None
    source: Net | None = None          # None: the shipped (or first-start) source net
    source_label: str = ""
    runs: dict[int, dict] = field(default_factory=dict)  # job id -> {"kind", "label", params...}
    last_drawing: np.ndarray | None = None               # (28, 28) uint8 from the Draw page
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.cache_resource
def sessions() -> dict[str, SessionState]:
    return {}


@st.cache_resource
def pool() -> JobPool:
    """The one process-wide pool; LENET_WORKERS sets its size (default: the number of cores).

    Jobs are many small nets on few cores: one intra-op thread each avoids oversubscription
    (measured on 2 busy cores: an n=4, k=5 run took 55 s with torch's 2 threads, 1.7 s with 1).
    """
    torch.set_num_threads(1)
    threading.Thread(target=prestart, daemon=True).start()  # the first job need not wait for it
    return JobPool(store=JobStore(settings.home() / "jobs"), log=_log)


def _log(message: str) -> None:
    import sys
    print(message, file=sys.stderr)


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
    all_sessions = sessions()
    sid = session_id()
    if sid not in all_sessions:
        kind, path, _ = default_setup()
        # jobs kept on disk from before a restart are this session's again
        all_sessions[sid] = SessionState(kind, path, runs={j.id: j.meta for j in pool().jobs(sid) if j.meta.get("kind")})
    return all_sessions[sid]


def session_dir(*parts: str) -> Path:
    return settings.home().joinpath("sessions", session_id(), *parts)


def default_setup() -> tuple[str, str | None, Path | None]:
    """(data kind, data path, shipped source net folder or None).

    LENET_DATA (synthetic | emnist | a folder/archive path) and LENET_SOURCE (a saved net)
    override; otherwise the EMNIST net on EMNIST (the full set when found, else the subset that
    ships in assets/emnist-subset), else the synthetic one.
    """
    env_data, env_source = settings.get("LENET_DATA"), settings.get("LENET_SOURCE")
    if env_data:
        kind, path = (env_data, None) if env_data in ("synthetic", "emnist") else ("emnist", env_data)
        if env_source:
            return kind, path, Path(env_source)
        return kind, path, checkpoint.shipped(kind)
    emnist = find_emnist() is not None
    if env_source:
        return ("emnist" if emnist else "synthetic"), None, Path(env_source)
    if emnist and checkpoint.shipped("emnist"):
        return "emnist", None, checkpoint.shipped("emnist")
    if checkpoint.shipped("synthetic"):
        return "synthetic", None, checkpoint.shipped("synthetic")
    return ("emnist" if emnist else "synthetic"), None, None


def dataset(kind: str, path: str | None = None) -> CharacterSet:
    """The set load(kind, path) gives, loaded once per process. Without a path, EMNIST is keyed by where
    it is found, so a finished download replaces the subset at once."""
    if kind == "emnist" and not path:
        found = find_emnist()
        path = None if found is None else str(found)
    return _dataset(kind, path or None)


@st.cache_resource(show_spinner="Loading characters…", max_entries=4)
def _dataset(kind: str, path: str | None) -> CharacterSet:
    return load(kind, path)
