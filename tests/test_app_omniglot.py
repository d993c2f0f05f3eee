"""The Transfer page takes its new characters from an Omniglot alphabet (AppTest, a real job), and Draw reads them."""
from __future__ import annotations

import io
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lenet.data.omniglot import SHIPPED_DIR
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
SID = uuid.uuid4().hex


pytestmark = pytest.mark.usefixtures("emnist_app_env")  # tests/conftest.py


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_transfer_page_takes_new_characters_from_an_omniglot_alphabet():
    at = open_app("app_pages/transfer.py", SID, timeout=90)
    at.radio(key="tr-from").set_value("an Omniglot alphabet").run()
    at.selectbox(key="tr-alphabet").set_value("Korean").run()
    assert not at.exception, [e.value for e in at.exception]
    chars = at.multiselect(key="tr-chars-Korean")
    assert len(chars.options) == 40 and all(c.startswith("Korean/character") for c in chars.options)
    assert len(chars.value) == 20  # the alphabet's first 20 by default
    picked = chars.value[:3]
    chars.set_value(picked).run()
    at.number_input(key="tr-k").set_value(20).run()
    next(b for b in at.button if b.label == "Start").click().run()
    assert "k must be 1..19 for Omniglot characters" in texts(at.error)
    at.number_input(key="tr-k").set_value(3)
    at.number_input(key="tr-epochs").set_value(3).run()
    next(b for b in at.button if b.label == "Start").click().run()
    end = time.monotonic() + 90
    while "Done" not in texts(at.success):
        assert time.monotonic() < end, "the transfer job did not finish in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    import ui
    (run_id,) = ui.sessions()[SID].runs  # this session's one run
    job = ui.pool().get(run_id)
    tests = [r["test_acc"] for r in job.snapshot().records if r.get("kind") == "epoch" and r.get("test_acc") is not None]
    assert tests and 0 <= tests[-1] <= 1  # scored on the other 17 drawers of each character
    assert ui.sessions()[SID].runs[run_id]["classes"] == picked  # the net reads these Korean characters
    # Draw reads the new characters: the page offers the net, and a drawing of one is ranked among them
    net = job.snapshot().result
    assert net.classes == picked
    at.switch_page("app_pages/draw.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.selectbox(key="draw-net").options) == 2  # the source net and the Korean one
    alphabet, character = picked[0].split("/")
    with zipfile.ZipFile(SHIPPED_DIR / "images_background_small1.zip") as z:
        name = next(n for n in z.namelist() if f"/{alphabet}/{character}/" in n and n.endswith("_01.png"))
        ink = np.asarray(Image.open(io.BytesIO(z.read(name))).convert("L").resize((280, 280)))
    rgba = np.dstack([ink, ink, ink, np.full_like(ink, 255)])  # black ink on a white canvas
    image, ranking = ui.classify(net, rgba)
    assert image.shape == (28, 28) and {c for c, _ in ranking} <= set(picked)


def test_experiments_page_runs_the_grid_on_an_omniglot_alphabet():
    """Experiments takes each class split's new characters from one Omniglot alphabet, with Omniglot's test and
    validation sizes, exactly as `reproduce --data omniglot` does."""
    at = open_app("app_pages/experiments.py", timeout=90)
    at.radio(key="ex-from").set_value("Omniglot alphabets").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="ex-k-omniglot").options == ["1", "2", "5", "10"]
    assert "(the Balinese alphabet)" in texts(at.caption) and "8 test samples of each: 160" in texts(at.caption)
    at.multiselect(key="ex-levels").set_value([5])
    at.multiselect(key="ex-k-omniglot").set_value([2])
    at.number_input(key="ex-trials").set_value(1)
    at.number_input(key="ex-steps").set_value(6).run()
    next(b for b in at.button if b.label == "Run the grid").click().run()
    end = time.monotonic() + 90
    while "Done" not in texts(at.success):
        assert time.monotonic() < end, "the grid did not finish in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    import json

    from lenet import settings
    (meta,) = [json.loads(p.read_text()) for p in (settings.home() / "experiments").glob("*/*/meta.json")]
    s = meta["settings"]
    assert s["data"].startswith("omniglot") and (s["test_per_class"], s["val_per_class"]) == (8, 2)
    assert len(s["target_classes"]) == 20 and all(c.startswith("Balinese/") for c in s["target_classes"])


def test_teach_takes_characters_from_an_omniglot_alphabet():
    """Teach adds real drawings of an alphabet's characters to the session's samples, under short names."""
    from lenet.data import load
    from lenet.data.protocol import rows_of
    from lenet.drawing.store import SampleStore
    sid = uuid.uuid4().hex
    at = open_app("app_pages/teach.py", sid, timeout=90)
    at.toggle(key="teach-og").set_value(True).run()
    at.selectbox(key="teach-og-alphabet").set_value("Korean").run()
    chars = at.multiselect(key="teach-og-chars-Korean")
    assert chars.value == [f"Korean/character{i:02d}" for i in range(1, 6)]
    chars.set_value(chars.value[:2])
    at.number_input(key="teach-og-per").set_value(3).run()
    next(b for b in at.button if b.label == "Add their drawings").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Added Omniglot drawings: 3 of Korean01, 3 of Korean02." in texts(at.success)
    assert "**Korean01** — 3 sample(s)" in texts(at.markdown)
    from lenet import settings
    store = SampleStore(settings.home() / "sessions" / sid / "teach")
    ds = load("omniglot")
    for name, cls in (("Korean01", "Korean/character01"), ("Korean02", "Korean/character02")):
        got = [img for _, img in store.samples(name)]
        assert np.array_equal(np.stack(got), ds.images[rows_of(ds, cls)[:3]])  # the first three drawers' drawings
    next(b for b in at.button if b.label == "Add their drawings").click().run()
    assert "Korean01, Korean02 already on the list" in texts(at.error)  # never two sources for one name
