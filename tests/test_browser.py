"""The served app in a real browser: `streamlit run app.py`, driven by headless Chromium (Playwright).

Opens every page (no exception box; a screenshot of each in test-artifacts/), draws an "L" on
the Draw canvas with the mouse and reads the Prediction metric, and starts a transfer run at
n = 4, k = 5 and watches its chart grow. Skips cleanly without Chromium or Playwright.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
PAGES = ["", "lesson", "source", "transfer", "experiments", "studies", "maps", "draw", "teach", "class"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


HOMES: dict[str, Path] = {}  # LENET_HOME of the module's server: its log, its sessions' files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(home: Path, data: str):
    """`streamlit run app.py` on a free port with LENET_HOME=home and LENET_DATA=data; yields its URL."""
    port = free_port()
    env = {**os.environ, "LENET_HOME": str(home), "LENET_WORKERS": "2", "LENET_DATA": data}
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        end = time.monotonic() + 30
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            assert proc.poll() is None, (home / "streamlit.log").read_text()
            assert time.monotonic() < end, "streamlit did not become healthy in 30 s"
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with LENET_HOME in tmp and the shipped synthetic source net."""
    from lenet.core import checkpoint
    net = checkpoint.load(ROOT / "assets" / "source-synthetic")
    home = tmp_path_factory.mktemp("home")
    HOMES["server"] = home
    with streamlit_app(home, "synthetic") as url:
        yield url, net


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 2000})
        yield pg
        browser.close()


def open_page(pg, base: str, path: str, sid: str) -> None:
    pg.goto(f"{base}/{path}?sid={sid}")
    pg.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=45_000)
    settle(pg)


def settle(pg) -> None:
    """Wait until the script run is over (twice, a moment apart: one run may trigger another)."""
    for _ in range(2):
        pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=45_000)
        pg.wait_for_timeout(700)


def test_every_page_renders_without_an_exception(server, page):
    base, _ = server
    sid = uuid.uuid4().hex
    for path in PAGES:
        t = time.monotonic()
        open_page(page, base, path, sid)
        page.screenshot(path=str(ARTIFACTS / f"page-{path or 'home'}.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0, f"/{path} shows an exception"
        assert sid in page.url, "the session id stays in the URL"
        assert time.monotonic() - t < 45


def _draw_n(pg, canvas, left=90, top=50, right=190, bottom=230) -> None:
    """One stroke: up the left side, down the diagonal, up the right side."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = box["x"], box["y"]
    corners = [(left, bottom), (left, top), (right, bottom), (right, top)]
    pg.mouse.move(x + corners[0][0], y + corners[0][1])
    pg.mouse.down()
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        for i in range(1, 13):
            pg.mouse.move(x + x0 + (x1 - x0) * i / 12, y + y0 + (y1 - y0) * i / 12)
    pg.mouse.up()


def _prediction(pg, differs_from: str | None = None) -> str:
    """The Prediction metric once it is shown (and, given differs_from, once it has changed)."""
    metric = pg.locator('[data-testid="stMetricValue"]')
    metric.wait_for(timeout=20_000)
    end = time.monotonic() + 20
    while differs_from is not None and metric.inner_text().strip() == differs_from and time.monotonic() < end:
        pg.wait_for_timeout(200)
    settle(pg)
    return metric.inner_text().strip()


def _set_pen(pg, width: int) -> None:
    """The Pen width slider to `width` px with the keyboard (one px a key press)."""
    thumb = pg.get_by_role("slider").first
    value = pg.locator('[data-testid="stSliderThumbValue"]').first
    thumb.focus()
    now = int(value.inner_text())
    for _ in range(abs(width - now)):
        thumb.press("ArrowRight" if width > now else "ArrowLeft")
    settle(pg)
    assert int(value.inner_text()) == width


def test_draw_an_N_and_read_the_prediction(server, page):
    base, net = server
    assert "N" in net.classes
    open_page(page, base, "draw", uuid.uuid4().hex)
    assert page.locator('[data-testid="stMetric"]').count() == 0, "no prediction before drawing"
    _draw_n(page, page.locator("canvas").last)
    value = _prediction(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "draw-prediction.png"), full_page=True)
    assert value == "N", f"the shipped net read a drawn N as {value!r}"
    # the top 3 with calibrated confidences (the shipped net has a temperature), most likely first
    table = page.locator('[data-testid="stTable"]').last
    assert "confidence" in table.inner_text()
    shares = [int(t.strip().rstrip("%")) for t in table.locator("td").all_inner_texts() if t.strip().endswith("%")]
    assert len(shares) == 3 and shares == sorted(shares, reverse=True) and shares[0] >= 50, shares


def test_a_thin_and_a_thick_pen_both_read_N(server, page):
    """Stroke normalisation: the same character read alike with a 6 px pen drawn big and a 30 px pen drawn small."""
    base, _ = server
    open_page(page, base, "draw", uuid.uuid4().hex)
    read = {}
    for pen, box in ((6, (60, 30, 220, 250)), (30, (90, 70, 190, 210))):
        _set_pen(page, pen)
        page.get_by_role("button", name="Reset canvas & history").click()
        settle(page)
        _draw_n(page, page.locator("canvas").last, *box)
        read[pen] = _prediction(page)
        page.screenshot(path=str(ARTIFACTS / f"draw-pen-{pen}.png"), full_page=True)
    assert read == {6: "N", 30: "N"}, f"a drawn N was read as {read}"


def test_drawing_right_after_clear_is_read(server, page):
    """Clear (the canvas's bin) must not swallow a stroke drawn at once after it: no sleep between them."""
    base, net = server
    assert {"Z", "N"} <= set(net.classes)
    open_page(page, base, "draw", uuid.uuid4().hex)
    canvas = page.locator("canvas").last
    # A Z: across the top, down the diagonal, across the bottom.
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    zed = [(80, 50), (200, 50), (80, 230), (200, 230)]
    page.mouse.move(box["x"] + zed[0][0], box["y"] + zed[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(zed, zed[1:]):
        for i in range(1, 13):
            page.mouse.move(box["x"] + x0 + (x1 - x0) * i / 12, box["y"] + y0 + (y1 - y0) * i / 12)
    page.mouse.up()
    first = _prediction(page)
    for _ in range(2):
        page.get_by_role("button", name="Reset canvas & history").click()
        _draw_n(page, canvas)  # at once: no wait for any rerun
        assert _prediction(page, differs_from=first) == "N", f"first read {first!r}"
        page.get_by_role("button", name="Reset canvas & history").click()
        page.locator('[data-testid="stMetricValue"]').wait_for(state="detached", timeout=20_000)
        settle(page)
        first = None
    assert page.locator('[data-testid="stException"]').count() == 0


MATRIX = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const i = plots.findIndex(p => JSON.stringify(p.layout.title || '').includes('Confusion matrix'));
  if (i < 0) return null;
  const cells = plots[i].data[0].customdata;  // [true, read as, count, share], row by row
  const off = cells.map((c, j) => [c, j]).filter(([c]) => c[0] !== c[1] && c[2] > 0);
  // not the cell shown before any click (the most frequent misreading): the least frequent, the last such
  const pick = off.length > 1 ? off.reduce((a, b) => (b[0][2] <= a[0][2] ? b : a))
                              : cells.map((c, j) => [c, j]).filter(([c]) => c[0] === c[1] && c[2] > 0).pop();
  return {plot: i, point: pick[1], cell: pick[0]};
}"""


def test_a_confusion_cell_click_shows_its_misread_samples(server, page):
    """A finished transfer run's confusion matrix: clicking a cell shows the test characters read that way;
    the ONNX download reads them as the app does."""
    import re

    import numpy as np
    base, _ = server
    sid = uuid.uuid4().hex
    open_page(page, base, "transfer", sid)
    k = page.get_by_label("Samples per class k", exact=True)
    k.fill("1")  # one sample per class: plenty misread
    k.press("Enter")
    epochs = page.get_by_label("Max epochs", exact=True)
    epochs.fill("12")  # a test point every epoch: a short run
    epochs.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_text("Done:").first.wait_for(timeout=90_000)
    # Every job of the start (the run and its baseline) finished: the last to finish reruns the page, and a
    # download clicked while a rerun replaces the buttons asks for a file that is gone.
    page.wait_for_function("() => ![...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Stop')",
                           timeout=120_000)
    settle(page)
    page.wait_for_timeout(1000)  # plotly draws after the script run
    found = page.evaluate(MATRIX)
    assert found is not None, "the finished run's confusion matrix is shown"
    true, read, count = found["cell"][:3]
    plot = page.locator(".js-plotly-plot").nth(found["plot"])
    plot.scroll_into_view_if_needed()
    plot.locator(".scatterlayer .points path").nth(found["point"]).click(force=True)
    caption = page.get_by_text(re.compile(rf"^{count} of the \d+ test characters of {re.escape(true)} were read as "
                                          rf"{re.escape(read)}"))
    caption.wait_for(timeout=20_000)
    settle(page)
    shown = page.locator(".st-key-tr-samples img")
    assert shown.count() == min(count, 40), f"{shown.count()} samples shown for a cell of {count}"
    page.screenshot(path=str(ARTIFACTS / "transfer-confusion.png"), full_page=True)
    with page.expect_download(timeout=60_000) as dl:  # the one-page summary: settings, curves, the matrix
        page.get_by_role("button", name="Download a one-page summary (HTML)").click()
    summary = Path(dl.value.path()).read_text()
    assert "Confusion matrix" in summary and "train loss" in summary and "samples per class k" in summary
    from lenet.core.export import missing, onnx_predict
    if missing() is None:  # the ONNX download reads the run's test characters as the app does
        from lenet.runtime.store import JobStore
        store = JobStore(HOMES["server"] / "jobs")
        job = max(r["id"] for r in store.records() if r.get("owner") == sid)
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_role("button", name="Download the net (ONNX)").click()
        test = store.split(job, "split").test
        predicted = onnx_predict(Path(dl.value.path()).read_bytes(), test.images)
        assert predicted == store.result(job).predict(test.images)
        right = np.mean([p == test.classes[l] for p, l in zip(predicted, test.labels)])
        assert 0.05 < right < 1
    assert page.locator('[data-testid="stException"]').count() == 0


CURVE_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const curves = plots.filter(p => (p.data || []).some(t => t.name === 'train loss'));
  return curves.length ? curves[curves.length - 1].data.find(t => t.name === 'train loss').x.length : -1;
}"""


def test_transfer_run_updates_its_chart(server, page):
    base, _ = server
    open_page(page, base, "transfer", uuid.uuid4().hex)
    # n = 0 (no transfer) and k = 20 train for tens of epochs: long enough to watch the
    # curves grow (with the shipped net, n = 4 learns k = 5 in about a second).
    thumb = page.get_by_role("slider")
    thumb.focus()
    for _ in range(5):
        thumb.press("ArrowLeft")
    settle(page)
    assert "Frozen: none" in page.get_by_text("Frozen:").inner_text()
    k = page.get_by_label("Samples per class k", exact=True)
    k.fill("20")
    k.press("Enter")
    epochs = page.get_by_label("Max epochs", exact=True)
    epochs.fill("100")
    epochs.press("Enter")
    settle(page)
    page.get_by_role("button", name="Start", exact=True).click()
    seen, end = [], time.monotonic() + 90
    while time.monotonic() < end and len(set(seen)) < 3:
        points = page.evaluate(CURVE_POINTS)
        if points > 0 and (not seen or points != seen[-1]):
            seen.append(points)
        if page.get_by_text("Done:").count():
            break
        page.wait_for_timeout(300)
    assert len(set(seen)) >= 2, f"the live chart never grew: saw {seen}"
    if not page.get_by_text("Done:").count():  # still training: Stop must end it promptly
        page.get_by_role("button", name="Stop").first.click()
        page.get_by_text("Stopped").first.wait_for(timeout=10_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "transfer-run.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    log = (HOMES["server"] / "streamlit.log").read_text()
    assert "WARNING" not in log and "Traceback" not in log, f"a job start logs a warning:\n{log[-2000:]}"


def _stroke(pg, canvas, points) -> None:
    """One pen stroke through canvas-relative points."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    pg.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    pg.mouse.down()
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        for i in range(1, 7):
            pg.mouse.move(box["x"] + x0 + (x1 - x0) * i / 6, box["y"] + y0 + (y1 - y0) * i / 6)
    pg.mouse.up()


def _plus(pg, canvas, rng) -> None:
    cx, cy, r = 140 + rng.uniform(-25, 25), 140 + rng.uniform(-25, 25), rng.uniform(60, 95)
    _stroke(pg, canvas, [(cx - r, cy + rng.uniform(-8, 8)), (cx + r, cy + rng.uniform(-8, 8))])
    settle(pg)  # the first stroke's rerun must end before the second stroke starts
    _stroke(pg, canvas, [(cx + rng.uniform(-8, 8), cy - r), (cx + rng.uniform(-8, 8), cy + r)])


def _ring(pg, canvas, rng) -> None:
    import math
    cx, cy, r = 140 + rng.uniform(-25, 25), 140 + rng.uniform(-25, 25), rng.uniform(55, 90)
    squash = rng.uniform(0.75, 1.0)
    _stroke(pg, canvas, [(cx + r * math.cos(a) * squash, cy + r * math.sin(a))
                         for a in [2 * math.pi * i / 24 for i in range(26)]])


def test_teach_two_symbols_from_five_drawings_each(server, page):
    """The classroom demo: name two symbols, draw five of each, train, and read fresh drawings."""
    import random
    rng = random.Random(7)
    base, _ = server
    open_page(page, base, "teach", uuid.uuid4().hex)
    shapes = {"+": _plus, "○": _ring}
    for name in shapes:
        page.get_by_label("A new character (1-3 symbols, e.g. α or ☺)", exact=True).fill(name)
        page.get_by_role("button", name="Add character").click()
        settle(page)
    for name, draw in shapes.items():
        page.locator('[data-testid="stRadio"]').get_by_text(name, exact=True).click()
        settle(page)
        for i in range(5):
            draw(page, page.locator("canvas").last, rng)
            settle(page)  # the last stroke's rerun must be over before "Add" reads the preview
            page.get_by_text("to be added (28x28)").wait_for(timeout=20_000)
            page.locator("button", has_text=f"Add this drawing to {name}").first.click()
            page.get_by_text(f"Added a sample of {name} ({i + 1} now)").wait_for(timeout=20_000)
            settle(page)  # the cleared canvas's reruns are over: the message must still be there
            assert page.get_by_text(f"Added a sample of {name} ({i + 1} now)").is_visible()
    page.get_by_role("button", name="Train on my drawings").click()
    page.get_by_text("Done:").first.wait_for(timeout=90_000)
    settle(page)
    page.get_by_text("4. Test it").wait_for(timeout=20_000)
    read = {}
    for name, draw in shapes.items():
        page.get_by_role("button", name="Reset canvas & history").last.click()
        draw(page, page.locator("canvas").last, rng)
        metric = page.locator('[data-testid="stMetricValue"]').last
        metric.wait_for(timeout=20_000)
        settle(page)
        read[name] = metric.inner_text().strip()
    page.screenshot(path=str(ARTIFACTS / "teach-trained.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert read == {"+": "+", "○": "○"}, f"fresh drawings were read as {read}"


CRITERIA_TRACES = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  return plots.flatMap(p => (p.data || []).map(t => t.name));
}"""


def test_a_quick_study_runs_and_its_figure_fills_in(server, page):
    """The Studies page: pick the partial-transfer study, run its quick version, see every criterion plotted."""
    base, _ = server
    open_page(page, base, "studies", uuid.uuid4().hex)
    assert page.get_by_text("Partially transferred levels").count() >= 1
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="partial: Partially transferred levels").click()
    settle(page)
    page.get_by_role("button", name="Run the study").click()
    page.get_by_text("Done:").first.wait_for(timeout=300_000)  # ~40 s on 2 idle cores
    settle(page)
    names = set(page.evaluate(CRITERIA_TRACES))
    page.screenshot(path=str(ARTIFACTS / "study-partial.png"), full_page=True)
    assert {"saliency", "taylor", "mutual-info", "random"} <= names, f"traces: {names}"
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("python -m lenet study partial --quick").count() >= 1, "the command is shown"


def _canvas_pixels(pg):
    """The drawing canvas's own pixels (fabric's lower canvas), as an (H, W, 4) uint8 array."""
    import base64
    import io

    import numpy as np
    from PIL import Image
    canvases = pg.locator("canvas")
    classes = [canvases.nth(i).get_attribute("class") or "" for i in range(canvases.count())]
    lower = canvases.nth(max(i for i, c in enumerate(classes) if "lower-canvas" in c))  # the drawing, not the pen layer
    url = lower.evaluate("c => c.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def test_teach_canvas_stays_put_while_drawing_right_after_an_add(server, page):
    """The first strokes of a new drawing, right after "Add this drawing", with the page at its top:
    the canvas does not move under the pen (a move remounted it and garbled the drawing), every
    stroke is on it, and the sample saved is exactly what was drawn."""
    import numpy as np
    from PIL import Image, ImageDraw

    from lenet.drawing.canvas import canvas_to_image
    from lenet.drawing.store import SampleStore
    base, _ = server
    sid = uuid.uuid4().hex
    pg = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        open_page(pg, base, "teach", sid)
        pg.get_by_label("A new character (1-3 symbols, e.g. α or ☺)", exact=True).fill("☺")
        pg.get_by_role("button", name="Add character").click()
        settle(pg)
        canvas = pg.locator("canvas").last
        _stroke(pg, canvas, [(140, 60), (140, 220)])  # a first sample: any mark
        settle(pg)
        pg.locator("button", has_text="Add this drawing to ☺").first.click()
        pg.get_by_text("Added a sample of ☺ (1 now)").wait_for(timeout=20_000)
        settle(pg)
        pg.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
        store = SampleStore(HOMES["server"] / "sessions" / sid / "teach")
        before = {i for i, _ in store.samples("☺")}
        box = canvas.bounding_box()
        assert box["y"] + box["height"] < 1000, "the canvas is in view with the page at its top"
        # a smiley, drawn as a person does: no waiting for the page between strokes
        strokes = [[(95, 80), (95, 130)], [(185, 80), (185, 130)],
                   [(70, 170), (105, 215), (140, 230), (175, 215), (210, 170)]]
        tops = []
        for points in strokes:
            pg.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
            pg.mouse.down()
            for (x0, y0), (x1, y1) in zip(points, points[1:]):
                for i in range(1, 9):
                    pg.mouse.move(box["x"] + x0 + (x1 - x0) * i / 8, box["y"] + y0 + (y1 - y0) * i / 8)
                    now = canvas.bounding_box()
                    tops.append((now["x"], now["y"]))
                    pg.wait_for_timeout(25)
            pg.mouse.up()
            pg.wait_for_timeout(150)
        settle(pg)
        moved = max(max(abs(x - box["x"]), abs(y - box["y"])) for x, y in tops)
        assert moved <= 2, f"the canvas moved {moved:.0f} px during the strokes"
        drawn = _canvas_pixels(pg)
        assert drawn.shape[:2] == (280, 280)
        ink = drawn[..., :3].min(axis=2) < 128
        for points in strokes:  # every stroke is on the canvas, none lost to a remount
            ref = Image.new("L", (280, 280))
            ImageDraw.Draw(ref).line(points, fill=255, width=6)
            on = np.asarray(ref) > 0
            assert ink[on].mean() > 0.9, f"the stroke through {points} is missing from the canvas"
        pg.get_by_text("to be added (28x28)").wait_for(timeout=20_000)
        pg.locator("button", has_text="Add this drawing to ☺").first.click()
        pg.get_by_text("Added a sample of ☺ (2 now)").wait_for(timeout=20_000)
        settle(pg)
        pg.screenshot(path=str(ARTIFACTS / "teach-smiley.png"))
        saved = [img for i, img in store.samples("☺") if i not in before]
        assert len(saved) == 1
        expected = canvas_to_image(drawn)
        diff = np.abs(saved[0].astype(int) - expected.astype(int))
        assert diff.max() <= 2, f"the saved sample differs from the drawing by up to {diff.max()} grey levels"
        assert pg.locator('[data-testid="stException"]').count() == 0
    finally:
        pg.close()
