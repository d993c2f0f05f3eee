"""Who may do what: the teacher (signed in with the operator's password) or a student (within a quota).

Without a teacher password (LENET_TEACHER_PASSWORD, or `teacher_password` in Streamlit's secrets)
every session may do everything, an open lab. The teacher's role lives in the browser connection's
own st.session_state, not in the session id of the URL, so a shared URL never passes it on.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from lenet import settings
from lenet.classroom import Gate, QuotaError, SignIn, check_quota
from lenet.runtime.jobs import QUEUED, RUNNING

from .session import pool, session_id

TEACHER = "classroom-teacher"   # st.session_state: True once this connection signed in


def teacher_password() -> str:
    """LENET_TEACHER_PASSWORD, else `teacher_password` in .streamlit/secrets.toml; "" for neither."""
    password = settings.teacher_password()
    if password:
        return password
    try:
        return str(st.secrets.get("teacher_password", "") or "").strip()
    except Exception:  # no secrets file: st.secrets raises instead of being empty
        return ""


def teacher_mode() -> bool:
    """True when a teacher password is set (students and a teacher); False: an open lab."""
    return bool(teacher_password())


@st.cache_resource
def _gates() -> dict[str, Gate]:
    return {}


def _gate() -> Gate:
    """The server's one rate-limited password check (a new one if the operator changes the password)."""
    password = teacher_password()
    key = hashlib.sha256(password.encode()).hexdigest()
    gates = _gates()
    if key not in gates:
        gates.clear()
        gates[key] = Gate(password)
    return gates[key]


def log_tag() -> str:
    """How the server's log names this session: a short hash, not the id that opens its jobs."""
    return hashlib.sha256(session_id().encode()).hexdigest()[:10]


def sign_in(typed: str) -> SignIn:
    if not teacher_mode():
        return SignIn(True, "No teacher password is set: everyone may do everything.")
    result = _gate().attempt(log_tag(), typed)
    st.session_state[TEACHER] = result.ok
    return result


def is_teacher() -> bool:
    return not teacher_mode() or bool(st.session_state.get(TEACHER))


def require_teacher(action: str) -> bool:
    """True if this session may `action`; else a clear error on the page and False."""
    if is_teacher():
        return True
    st.error(f"Only the teacher can {action}. Students draw, teach and run single transfers "
             f"(up to {settings.student_jobs()} at once); ask your teacher, who signs in on the Class page.")
    return False


def within_quota(asked: int) -> bool:
    """True if this session may start `asked` more trainings; else the reason on the page and False."""
    if is_teacher():
        return True
    active = sum(j.state in (QUEUED, RUNNING) for j in pool().jobs(session_id()))
    try:
        check_quota(active, asked, settings.student_jobs())
    except QuotaError as e:
        st.error(str(e))
        return False
    return True
