"""A class: the class a session joined (kept on disk, so a reload or a restart keeps it), the class
set's drawings, the teacher's live view and the class net. Who may do what is ui.roles."""
from __future__ import annotations

import numpy as np
import streamlit as st

from lenet import settings
from lenet.classroom import ClassRoom, Classes
from lenet.config import DRAWN_TEACH, LEVELS
from lenet.core.net import Net
from lenet.data import DataError
from lenet.files import write_text

from .roles import TEACHER, is_teacher, require_teacher
from .session import pool, session_dir, session_id
from .training import start_transfer, teach_split, transfer_recipe

RUNNING_CLASS = "classroom-code"  # st.session_state: the class the teacher runs
PICK = "cls-pick"               # the Class page's picker (Streamlit drops a widget's state on other pages)
CLASS_NET_LEVELS = 4            # n of the class net: as Teach's default
CLASS_NET_EPOCHS = 60           # as Teach's default: a handful of drawings is learned well within it


# --- roles ------------------------------------------------------------------------------------

def sign_out() -> None:
    st.session_state[TEACHER] = False
    st.session_state.pop(RUNNING_CLASS, None)
    st.session_state.pop(PICK, None)


# --- classes ----------------------------------------------------------------------------------

def classes() -> Classes:
    return Classes(settings.home() / "classes")


def running_class() -> ClassRoom | None:
    """The class this (teacher's) connection runs, if any."""
    code = st.session_state.get(RUNNING_CLASS)
    if not code or not is_teacher():
        return None
    try:
        return classes().get(code)
    except DataError:
        return None


def open_class() -> None:
    """on_click: a new class, run at once."""
    st.session_state[RUNNING_CLASS] = st.session_state[PICK] = classes().open().code


def _picked() -> None:
    if st.session_state.get(PICK):
        st.session_state[RUNNING_CLASS] = st.session_state[PICK]


def class_picker(container) -> None:
    """A selectbox over every class kept on the server, showing the one this teacher runs."""
    codes = [r.code for r in classes().all()]
    if not codes:
        return
    running = st.session_state.get(RUNNING_CLASS)
    if running in codes and st.session_state.get(PICK) != running:
        st.session_state[PICK] = running  # also after a visit to another page, which dropped the picker's state
    container.selectbox("Or run a class opened before", codes, key=PICK, index=None, on_change=_picked,
                        placeholder="its code", help="Every class kept on this server, newest first.")


def _joined_file():
    return session_dir("class.txt")


def joined_class() -> ClassRoom | None:
    """The class this session joined last (its code kept in the session's folder: a reload or a
    restart keeps it)."""
    try:
        room = classes().get(_joined_file().read_text())
    except (OSError, DataError):
        return None
    return room if room.student(session_id()) is not None else None


def my_class() -> ClassRoom | None:
    return running_class() or joined_class()


def join(code: str) -> ClassRoom:
    """Join the class with this code (as typed); DataError with the reason."""
    room = classes().get(code)
    room.join(session_id())
    _joined_file().parent.mkdir(parents=True, exist_ok=True)
    write_text(_joined_file(), room.code)
    return room


def share_drawing(char: str, image: np.ndarray) -> str | None:
    """Teach's drawing into the joined class's set too; a line saying so, or why not (None: no class)."""
    room = joined_class()
    if room is None:
        return None
    try:
        room.add(session_id(), char, image)
    except DataError as e:
        return f"Not added to the class set: {e}."
    return f"Also in class {room.code}'s set ({room.counts(session_id()).get(char, 0)} of yours)."


def joined_note() -> None:
    """Teach's line for a member of a class: where its drawings go, and who removes them."""
    room = joined_class()
    if room is not None:
        st.info(f"You are in class {room.code}: every drawing you add here goes into the class set too"
                + ("" if is_teacher() else "; only the teacher removes drawings") + ".")


# --- the class net ----------------------------------------------------------------------------

def start_class_net(room: ClassRoom, source: Net):
    """Train a transferred net on the class's pooled drawings (a job of this teacher's session)."""
    pooled = room.to_charset()
    split = teach_split(pooled)
    recipe = transfer_recipe(CLASS_NET_EPOCHS, 0).replace(target_train_acc=1.01)  # as Teach: on to the codes
    n = CLASS_NET_LEVELS
    return start_transfer(source, split, n, recipe, f"class {room.code} net: {' '.join(split.classes)} n={n}",
                          kind="class", code=room.code, k=len(split.train), held_out=len(split.test),
                          drawn=DRAWN_TEACH.copies)  # drawings, as Teach: drawn copies read new drawers better


def class_jobs(room: ClassRoom) -> list:
    """Every job training this class's net, whoever started it, oldest first."""
    return sorted((j for j in pool().jobs() if j.meta.get("kind") == "class" and j.meta.get("code") == room.code),
                  key=lambda j: j.id)


def class_nets() -> list[tuple[str, Net]]:
    """The newest finished net of this session's class, as (label, net) for the Draw page."""
    room = my_class()
    if room is None:
        return []
    for job in reversed(class_jobs(room)):
        snap = job.snapshot()
        if snap.state == "done" and isinstance(snap.result, Net):
            return [(f"class net ({room.code}: {' '.join(snap.result.classes)})", snap.result)]
    return []


def remove_job(job) -> bool:
    """A finished job gone from the pool and the disk; only the teacher may."""
    if not require_teacher("remove jobs"):
        return False
    pool().forget(job.id)
    return True


def levels_note() -> str:
    return ", ".join(level.upper() for level in LEVELS[:CLASS_NET_LEVELS])


# --- live panels ------------------------------------------------------------------------------

LIVE_SECONDS = 2.0  # how often the class panels look for new drawings


@st.fragment(run_every=LIVE_SECONDS)
def teacher_live(code: str) -> None:
    """Members and drawings per student and character, as they arrive."""
    room = classes().get(code)
    rows, totals = room.contributions(), room.counts()
    st.markdown(f"**{room.members()} student(s) joined, {sum(totals.values())} drawing(s) of "
                f"{len(totals)} character(s)**" + ("" if room.is_open else " (closed: no new drawings)"))
    if totals:
        st.caption("Pooled: " + ", ".join(f"{c} × {n}" for c, n in totals.items()))
    if rows:
        import pandas as pd
        table = pd.DataFrame(rows).pivot_table(index="student", columns="character", values="drawings",
                                               fill_value=0, aggfunc="sum")
        table.index = [f"student {i}" for i in table.index]
        st.dataframe(table, key=f"cls-contrib-{code}")


@st.fragment(run_every=LIVE_SECONDS)
def student_live(code: str) -> None:
    """The class's totals and this student's own share (never another student's drawings)."""
    room = classes().get(code)
    mine, totals = room.counts(session_id()), room.counts()
    st.markdown(f"**Class {room.code}: {sum(totals.values())} drawing(s) of {len(totals)} character(s) so far**"
                + ("" if room.is_open else " (closed: no new drawings)"))
    if totals:
        ours = ", ".join(f"{c} × {n}" for c, n in totals.items())
        yours = ", ".join(f"{c} × {n}" for c, n in mine.items()) or "none yet"
        st.caption(f"The class: {ours}. Yours: {yours}.")
    nets = class_nets()
    if nets:
        st.success(f"The {nets[0][0]} is ready: pick it on Draw and test it.")
