"""A class in real browsers (issue #23's done-when): with a teacher password set, the teacher opens a
class; three student sessions join it and each adds drawings of two new characters on Teach; the
teacher's page shows them arrive and trains the class net on the pooled set; a student reads a new
drawing with it on Draw; a student's grid is refused; a restarted server still holds the class set."""
from __future__ import annotations

import math
import random
import re
import uuid

import pytest

from lenet.classroom import Classes
from test_browser import ARGS, ARTIFACTS, CHROMIUM, _stroke, playwright, streamlit_app

PASSWORD = "chalk and 7 apples"


def _ring(rng):
    cx, cy, r = 140 + rng.uniform(-20, 20), 140 + rng.uniform(-20, 20), rng.uniform(60, 90)
    return [(cx + r * math.cos(a) * rng.uniform(0.8, 1.0), cy + r * math.sin(a))
            for a in [2 * math.pi * i / 24 for i in range(26)]]


def _peak(rng):
    """An upside-down V in one stroke."""
    cx, w, h = 140 + rng.uniform(-20, 20), rng.uniform(60, 90), rng.uniform(80, 100)
    return [(cx - w, 140 + h), (cx + rng.uniform(-8, 8), 140 - h), (cx + w, 140 + h)]


SHAPES = {"○": _ring, "∧": _peak}


def settle(pg) -> None:
    """The script run is over (and any run it triggered): test_browser's settle, in less waiting."""
    for _ in range(2):
        pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=45_000)
        pg.wait_for_timeout(250)


def open_page(pg, base: str, path: str, sid: str) -> None:
    pg.goto(f"{base}/{path}?sid={sid}")
    pg.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=45_000)
    settle(pg)


def go(pg, title: str, path: str) -> None:
    """To another page through the sidebar, in the same connection (faster than a new page load)."""
    pg.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    pg.wait_for_url(re.compile(f"/{path}\\?"), timeout=20_000)
    settle(pg)


def _code_on(pg) -> str:
    heading = pg.locator("h2", has_text="Class code").inner_text()
    return re.search(r"Class code:\s*([A-Z0-9]{6})", heading).group(1)


def _sign_in(pg, wrong: str = "") -> None:
    pg.get_by_text("Teacher sign-in").click()
    if wrong:
        pg.get_by_label("Teacher password", exact=True).fill(wrong)
        pg.get_by_role("button", name="Sign in").click()
        pg.get_by_text("Wrong password.").wait_for(timeout=20_000)
        settle(pg)
        assert pg.get_by_role("button", name="Open a new class").count() == 0
    pg.get_by_label("Teacher password", exact=True).fill(PASSWORD)
    pg.get_by_role("button", name="Sign in").click()
    pg.get_by_text("Signed in as the teacher.").wait_for(timeout=20_000)
    settle(pg)


def _no_exception(pg) -> None:
    assert pg.locator('[data-testid="stException"]').count() == 0


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("LENET_TEACHER_PASSWORD", PASSWORD)  # streamlit_app passes the environment on
    yield tmp_path_factory.mktemp("home")
    mp.undo()


def test_a_class_pools_three_students_drawings_trains_and_survives_a_restart(env):
    home, rng = env, random.Random(3)
    ARTIFACTS.mkdir(exist_ok=True)
    students = [uuid.uuid4().hex for _ in range(3)]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        with streamlit_app(home, "synthetic") as base:
            teacher = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            open_page(teacher, base, "class", uuid.uuid4().hex)
            _sign_in(teacher, wrong="chalk and 8 apples")
            teacher.get_by_role("button", name="Open a new class").click()
            teacher.locator("h2", has_text="Class code").wait_for(timeout=20_000)
            code = _code_on(teacher)

            pages = []
            for i, sid in enumerate(students):  # each in its own browser context: its own cookies and storage
                pg = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
                pages.append(pg)
                open_page(pg, base, "class", sid)
                pg.get_by_label("Class code", exact=True).fill(code.lower())
                pg.get_by_role("button", name="Join", exact=True).click()
                pg.get_by_text(f"Joined class {code}").wait_for(timeout=20_000)
                assert pg.get_by_role("button", name="Open a new class").count() == 0
                go(pg, "Teach", "teach")
                assert pg.get_by_text(f"You are in class {code}: every drawing you add here goes into").count()
                for name in SHAPES:
                    pg.get_by_label("A new character (1-3 symbols, e.g. α or ☺)", exact=True).fill(name)
                    pg.get_by_role("button", name="Add character").click()
                    settle(pg)
                for name, shape in SHAPES.items():
                    pg.locator('[data-testid="stRadio"]').get_by_text(name, exact=True).click()
                    settle(pg)
                    _stroke(pg, pg.locator("canvas").last, shape(rng))
                    pg.get_by_text("to be added (28x28)").wait_for(timeout=20_000)
                    settle(pg)
                    pg.locator("button", has_text=f"Add this drawing to {name}").first.click()
                    pg.get_by_text(f"Added a sample of {name} (1 now). Also in class {code}'s set").wait_for(
                        timeout=20_000)
                    settle(pg)
                assert pg.get_by_role("button", name="✕").count() == 0, "a student removes no drawing"
                _no_exception(pg)

            # the teacher's page, never reloaded, shows every drawing as it arrived
            teacher.get_by_text("3 student(s) joined, 6 drawing(s) of 2 character(s)").wait_for(timeout=20_000)
            teacher.screenshot(path=str(ARTIFACTS / "class-teacher.png"), full_page=True)
            teacher.get_by_role("button", name="Train the class net on the pooled drawings").click()
            teacher.get_by_text("Done:").first.wait_for(timeout=120_000)
            _no_exception(teacher)

            reader = pages[0]
            go(reader, "Draw", "draw")
            reader.get_by_role("combobox", name="Net that reads your drawing").click()
            reader.get_by_role("option", name=re.compile(r"^class net")).click()
            settle(reader)
            assert reader.get_by_text("It knows 2 characters").count()
            read = {}
            for name, shape in SHAPES.items():
                reader.get_by_role("button", name="Clear").last.click()
                settle(reader)
                _stroke(reader, reader.locator("canvas").last, shape(rng))
                metric = reader.locator('[data-testid="stMetricValue"]').last
                metric.wait_for(timeout=20_000)
                settle(reader)
                read[name] = metric.inner_text().strip()
            reader.screenshot(path=str(ARTIFACTS / "class-draw.png"), full_page=True)
            assert read == {name: name for name in SHAPES}, f"the class net read fresh drawings as {read}"

            student = pages[1]
            go(student, "Experiments", "experiments")
            student.get_by_role("button", name="Run the grid").click()
            student.get_by_text("Only the teacher can start a grid.").wait_for(timeout=20_000)
            assert student.get_by_text("Running:").count() == 0 and student.get_by_text("Queued").count() == 0
            _no_exception(student)

        log = (home / "streamlit.log").read_text()  # the first server's (the next one writes its own)
        assert "Traceback" not in log, log[-2000:]
        assert "wrong teacher password from session" in log, "the wrong try is in the server's log"
        assert "apples" not in log, "neither the password nor the wrong one is"
        assert Classes(home / "classes").get(code).counts() == {"○": 3, "∧": 3}
        with streamlit_app(home, "synthetic") as base:  # a new server process on the same LENET_HOME
            teacher = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            open_page(teacher, base, "class", uuid.uuid4().hex)
            _sign_in(teacher)
            teacher.get_by_role("combobox", name="Or run a class opened before").click()
            teacher.get_by_role("option", name=code).click()
            teacher.get_by_text("3 student(s) joined, 6 drawing(s) of 2 character(s)").wait_for(timeout=20_000)
            open_page(pages[2], base, "class", students[2])
            pages[2].get_by_text(f"You are student 3 of class {code}").wait_for(timeout=20_000)
            pages[2].get_by_text("is ready: pick it on Draw").wait_for(timeout=20_000)
            _no_exception(teacher)
            _no_exception(pages[2])
        browser.close()
    log = (home / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-2000:]
