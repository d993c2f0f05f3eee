"""A teacher and students (lenet/classroom): the password gate, class codes, the class set on disk,
the student quota; and the pages' gating through AppTest."""
from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

from lenet.classroom import ALPHABET, LENGTH, Classes, Gate, QuotaError, check_quota, clean_code, new_code
from lenet.classroom import auth
from lenet.data import DataError
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse 42"


def test_class_codes_are_short_unambiguous_and_forgiving_to_type():
    codes = {new_code() for _ in range(300)}
    assert len(codes) == 300, "codes repeat"
    assert all(len(c) == LENGTH == 6 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("0O1I") & set(ALPHABET)
    assert clean_code(" k7m2-qx ") == "K7M2QX"
    for bad in ("K0M2QX", "K7M2Q", "K7M2QXY", "", None, "K7M 2Q!"):
        with pytest.raises(DataError, match="a class code is 6 letters and digits"):
            clean_code(bad)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_wrong_passwords_back_off_per_session_and_server_wide_and_are_logged(caplog):
    clock = Clock()
    gate = Gate(PASSWORD, clock=clock)
    caplog.set_level(logging.INFO, logger="lenet.classroom")
    assert gate.attempt("a", PASSWORD).ok
    tries = [gate.attempt("b", f"guess {i}") for i in range(auth.FREE_TRIES)]
    assert [t.ok for t in tries] == [False] * auth.FREE_TRIES
    assert [t.wait for t in tries] == [0, 0, auth.BASE_DELAY], "free tries, then a wait"
    refused = gate.attempt("b", PASSWORD)
    assert not refused.ok and "try again in 5 s" in refused.message, "while it waits, even the right one is refused"
    assert gate.attempt("c", PASSWORD).ok, "another session is not held up by b"
    clock.now += auth.BASE_DELAY
    again = gate.attempt("b", "guess 4")
    assert again.wait == 2 * auth.BASE_DELAY, "the wait doubles"
    clock.now += again.wait
    assert gate.attempt("b", PASSWORD).ok
    assert gate.attempt("b", "wrong").wait == 0, "a right password starts the count again"
    # many sessions guessing together close sign-in for everyone, then it opens again
    clock.now += auth.GLOBAL_WINDOW
    for i in range(auth.GLOBAL_LIMIT):
        gate.attempt(f"bot{i}", "x")
    closed = gate.attempt("teacher", PASSWORD)
    assert not closed.ok and "sign-in is closed" in closed.message
    clock.now += auth.GLOBAL_WINDOW
    assert gate.attempt("teacher", PASSWORD).ok
    text = caplog.text
    assert "wrong teacher password from session b" in text and "refused for session b" in text
    assert PASSWORD not in text and "guess" not in text, "the log holds neither the password nor what was typed"
    for r in (*tries, refused, closed):
        assert PASSWORD not in r.message
    with pytest.raises(ValueError):
        Gate("")


def test_many_guessing_sessions_are_forgotten_but_a_waiting_one_still_waits(monkeypatch):
    monkeypatch.setattr(auth, "MAX_KEYS", 8)
    monkeypatch.setattr(auth, "GLOBAL_LIMIT", 10_000)
    clock = Clock()
    gate = Gate(PASSWORD, clock=clock)
    for _ in range(auth.FREE_TRIES):
        gate.attempt("locked", "x")
    for i in range(100):
        gate.attempt(f"s{i}", "x")
        assert len(gate._wrong) <= auth.MAX_KEYS
    assert not gate.attempt("locked", PASSWORD).ok, "forgetting idle sessions frees no waiting one"


def _ink(seed: int) -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    img[4 + seed % 5:24, 8 + seed % 7] = 255
    return img


def test_a_class_set_pools_sessions_survives_reopening_and_hides_who_drew(tmp_path):
    rooms = Classes(tmp_path / "classes")
    room = rooms.open()
    sids = [uuid.uuid4().hex for _ in range(3)]
    numbers = []
    threads = [threading.Thread(target=lambda s=s: numbers.append(room.join(s))) for s in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == [1, 2, 3], "the folder lock gives every joiner its own number"
    with pytest.raises(DataError, match="join class"):
        room.add(uuid.uuid4().hex, "+", _ink(0))
    for i, sid in enumerate(sids):
        for char in ("+", "○"):
            for j in range(2):
                room.add(sid, char, _ink(i + j))
    again = Classes(tmp_path / "classes").get(room.code.lower())  # as after a restart, typed in lower case
    assert again.counts() == {"+": 6, "○": 6}
    assert again.counts(sids[1]) == {"+": 2, "○": 2}
    pooled = again.to_charset()
    assert pooled.classes == ["+", "○"] and len(pooled) == 12
    assert [r["student"] for r in again.contributions()] == [1, 1, 2, 2, 3, 3]
    assert again.student(sids[2]) in (1, 2, 3) and again.student(uuid.uuid4().hex) is None
    on_disk = json.dumps(json.loads((room.root / "class.json").read_text())) + " ".join(
        str(p) for p in room.root.rglob("*"))
    assert not any(sid in on_disk for sid in sids), "no session id (the key to its jobs) is kept in the class"
    first = again.drawings()[0]
    assert again.remove(first.tag, first.char, first.id) and again.counts()["+"] == 5
    with pytest.raises(DataError):
        again.remove("../../etc", "+", first.id)
    again.close()
    with pytest.raises(DataError, match="closed"):
        again.add(sids[0], "+", _ink(1))
    with pytest.raises(DataError, match="closed"):
        again.join(uuid.uuid4().hex)
    with pytest.raises(DataError, match="no class has the code"):
        rooms.get("ZZZZZZ")
    other = rooms.open()
    (other.root / "class.json").write_text("{")
    assert [r.code for r in rooms.all()] == [room.code], "a damaged class is skipped, the others are listed"


def test_the_student_quota_counts_jobs_queued_or_running():
    check_quota(1, 1, 2)
    check_quota(5, 0, 2)
    with pytest.raises(QuotaError, match="at most 2 training jobs .* you have 2, .* Wait for one"):
        check_quota(2, 1, 2)
    with pytest.raises(QuotaError, match="Start at most 2 now"):
        check_quota(0, 3, 2)


# --- the pages, through AppTest --------------------------------------------------------------------

@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("LENET_HOME", str(home))
    mp.setenv("LENET_DATA", "synthetic")
    mp.setenv("LENET_SOURCE", str(ROOT / "assets" / "source-synthetic"))
    mp.setenv("LENET_WORKERS", "1")
    mp.setenv("LENET_STUDENT_JOBS", "1")
    mp.delenv("LENET_TEACHER_PASSWORD", raising=False)
    yield home
    mp.undo()


def _page(path: str, sid: str):
    return open_app(path, sid, secrets={"teacher_password": PASSWORD})  # as an operator may set it


def _texts(at) -> str:
    return " | ".join(str(e.value) for kind in (at.markdown, at.error, at.success, at.info, at.caption, at.warning)
                      for e in kind)


def _click(at, label: str):
    next(b for b in at.button if b.label == label).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_students_are_refused_teachers_actions_and_the_teacher_opens_a_class(app_env):
    teacher, student = uuid.uuid4().hex, uuid.uuid4().hex
    at = _page("app_pages/classroom.py", teacher)
    assert not any(b.label == "Open a new class" for b in at.button), "no class before signing in"
    at.text_input(key="cls-password").input("not it")
    _click(at, "Sign in")
    assert "Wrong password." in _texts(at)
    at.text_input(key="cls-password").input(PASSWORD)
    _click(at, "Sign in")
    assert "Signed in as the teacher." in _texts(at)
    assert PASSWORD not in _texts(at) and at.session_state["cls-password"] == "", "the password is not kept"
    _click(at, "Open a new class")
    code = re.search(r"Class code: `([A-Z0-9]{6})`", _texts(at)).group(1)
    _click(at, "Open a new class")
    other = re.search(r"Class code: `([A-Z0-9]{6})`", _texts(at)).group(1)
    assert other != code and {p.name for p in (app_env / "classes").iterdir()} == {code, other}
    at.selectbox(key="cls-pick").select(code).run()
    assert f"Class code: `{code}`" in _texts(at), "the picker runs a class opened before"
    for path in ("app_pages/draw.py", "app_pages/classroom.py"):  # away and back: still signed in, same class
        at.switch_page(path).run()
    assert f"Class code: `{code}`" in _texts(at) and at.selectbox(key="cls-pick").value == code

    st_at = _page("app_pages/classroom.py", student)
    st_at.text_input(key="cls-join").input(code.lower())
    _click(st_at, "Join")
    assert f"Joined class {code}" in _texts(st_at) and "student 1" in _texts(st_at)
    assert not any(b.label in ("Open a new class", "Remove") for b in st_at.button), "a student runs no class"

    room = Classes(app_env / "classes").get(code)
    for i in range(2):
        room.add(student, "∧", _ink(i))
    at.run()
    assert "1 student(s) joined, 2 drawing(s) of 1 character(s)" in _texts(at)
    _click(at, "Remove")
    assert room.counts() == {"∧": 1}, "the teacher removed one drawing"
    st_at.run()
    assert "The class: ∧ × 1. Yours: ∧ × 1." in _texts(st_at)

    ex = _page("app_pages/experiments.py", student)
    _click(ex, "Run the grid")
    assert "Only the teacher can start a grid." in _texts(ex)
    import ui
    assert not ui.pool().jobs(student), "nothing was started"

    tr = _page("app_pages/transfer.py", student)
    tr.number_input(key="tr-trials").set_value(2)
    tr.run()
    _click(tr, "Start")
    assert "A student may have at most 1 training job queued or running at once" in _texts(tr)
    assert not ui.pool().jobs(student)

    st_at.text_input(key="cls-join").input(other)
    _click(st_at, "Join")
    assert f"You are **student 1** of class **{other}**" in _texts(st_at), "the class joined last is the student's"
