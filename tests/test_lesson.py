"""The Lesson page on a fresh clone (the shipped subset, source net and results; nothing trained), its
answers computed from the shipped CSVs, and no page showing where anything is on the server."""
from __future__ import annotations

import csv
import uuid
from pathlib import Path

import pytest

from lenet.report import lesson
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "assets" / "results-emnist"
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app_pages").glob("*.py"))  # every page, new ones too


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh clone's app: LENET_HOME, the cache and the data folders in tmp, no full EMNIST anywhere
    (the shipped subset stands in), the shipped EMNIST source net."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("server")
    folders = {name: base / name for name in ("home", "cache", "emnist", "data")}
    for f in folders.values():
        f.mkdir()
    mp.setenv("LENET_HOME", str(folders["home"]))
    mp.setenv("LENET_CACHE", str(folders["cache"]))
    mp.setenv("LENET_DATA_DIR", str(folders["emnist"]))
    mp.setenv("LENET_DATA_DIRS", str(folders["data"]))
    mp.setenv("LENET_WORKERS", "1")
    for name in ("LENET_DATA", "LENET_SOURCE"):
        mp.delenv(name, raising=False)
    yield folders
    mp.undo()


def every_text(node) -> str:
    """Everything an element tree would send to the browser: each element's message, children included."""
    node = getattr(node, "_tree", node)  # an AppTest: its element tree
    if hasattr(node, "_list"):           # a list of elements (at.error)
        return "\n".join(every_text(e) for e in node)
    out = [str(getattr(node, "proto", "") or "")]
    for child in getattr(node, "children", {}).values():
        out.append(every_text(child))
    return "\n".join(out)


def shipped_rows() -> list[dict]:
    with open(SHIPPED / "seeds.csv", newline="") as f:
        return [{k: float(v) if k in ("mean", "ci_lo", "ci_hi") else int(v) if k in ("n", "k") else v
                 for k, v in r.items()} for r in csv.DictReader(f)]


def test_best_levels_names_the_best_n_and_those_it_cannot_be_told_from():
    rows = [{"n": 0, "k": 1, "mean": 0.20, "ci_lo": 0.18, "ci_hi": 0.22},
            {"n": 3, "k": 1, "mean": 0.30, "ci_lo": 0.28, "ci_hi": 0.33},
            {"n": 5, "k": 1, "mean": 0.32, "ci_lo": 0.30, "ci_hi": 0.34}]
    best, ties = lesson.best_levels(rows, 1)
    assert best["n"] == 5 and ties == [3]
    assert lesson.quick_grid_answer(rows, ks=(1,)) == ("k = 1: n = 5 is best, 32.0% [30.0%, 34.0%] (n = 3 within its "
                                                       "interval); no transfer (n = 0): 20.0% [18.0%, 22.0%].")
    with pytest.raises(ValueError, match="no k = 40"):
        lesson.best_levels(rows, 40)


@pytest.mark.skipif(not (SHIPPED / "seeds.csv").exists(), reason="no shipped results in assets/results-emnist")
def test_lesson_shows_every_step_from_shipped_results_and_trains_nothing(clone):
    import ui
    sid = uuid.uuid4().hex
    at = open_app("app_pages/lesson.py", sid)
    assert [s.value for s in at.subheader][:6] == [
        "1. What the source net knows", "2. What freezing n levels means", "3. A quick grid: 1 sample per class, then 40",
        "4. The paper's figure", "5. What the levels see", "6. One drawing"]
    charts = at.get("plotly_chart")
    assert len(charts) == 6, "Figure 1, the quick grid, Figure 2, C1's kernels, C1's and C3's maps"
    assert len(at.image) >= 20, "a sample of each of the source net's characters"
    assert len([m for m in at.markdown if m.value.startswith("**Ask the class:**")]) == 6
    shown = every_text(at)
    # the answers come from the shipped CSVs: the best n at k = 1 and k = 40, read here independently
    rows = shipped_rows()
    for k in (1, 40):
        best = max((r for r in rows if r["k"] == k), key=lambda r: r["mean"])
        assert f"k = {k}: n = {best['n']} is best, {100 * best['mean']:.1f}%" in shown
    assert "held" not in shown or "never saw" in shown
    at.slider(key="lesson-n").set_value(5).run()
    assert "leaves 4.6% of the free parameters" in every_text(at)  # the paper's figure, from the live model
    assert not ui.pool().jobs(sid), "opening the lesson starts no training"
    assert not at.exception


def test_no_page_shows_a_server_path(clone):
    """Every page of a new session, the Source page's data-folder choice and its refusals included:
    none of the server's folders (LENET_HOME, the cache, the data folders, the project, the user's
    home) appears in any element."""
    sid = uuid.uuid4().hex
    secret = [str(p) for p in clone.values()] + [str(ROOT), str(Path.home())]
    seen = {}
    for path in PAGES:
        seen[path] = every_text(open_app(path, sid))
    at = open_app("app_pages/source.py", sid)
    at.radio(key="src-kind").set_value("path").run()
    seen["source: the data-folder choice"] = every_text(at)
    for typed in ("/etc", str(clone["data"] / "nothing-here"), "relative/missing"):
        at.text_input(key="src-path").set_value(typed).run()
        next(b for b in at.button if b.label == "Use this dataset").click().run()
        assert at.error, f"{typed!r} is refused"
        seen[f"source: {typed} refused"] = every_text(at.error)
    at.file_uploader(key="src-zip").upload("broken.zip", b"PK\x03\x04 not really a zip").run()
    next(b for b in at.button if b.label == "Use this dataset").click().run()
    assert "broken.zip" in every_text(at.error)
    seen["source: a broken upload"] = every_text(at.error)
    found = {where: [s for s in secret if s in text] for where, text in seen.items()}
    assert not any(found.values()), {w: f for w, f in found.items() if f}
