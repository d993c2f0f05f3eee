"""The Streamlit app, page by page, through streamlit.testing.v1.AppTest (no browser).

Every page renders without an exception, shows its main controls, turns bad input into a
message, and (where it starts work) runs a short background job to the end. All tests
share one session id, as a reloaded browser tab would, so later pages see earlier jobs.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lenet.core import checkpoint
from lenet.config import Recipe
from lenet.data import load
from lenet.data.protocol import default_class_split, source_split
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
SID = uuid.uuid4().hex


@pytest.fixture(scope="module", autouse=True)
def env(tmp_path_factory):
    """LENET_HOME in tmp, synthetic data, and a tiny source net (1 epoch) as the shipped one."""
    import torch
    torch.set_num_threads(1)  # as the app does: one intra-op thread is far faster on busy cores
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    ds = load("synthetic")
    chars = default_class_split(ds.classes)[0]
    from lenet.core.net import train_source
    net, _ = train_source(source_split(ds, chars, 30, 5), Recipe(max_epochs=1))
    checkpoint.save(net, home / "source")
    mp.setenv("LENET_HOME", str(home))
    mp.setenv("LENET_DATA", "synthetic")
    mp.setenv("LENET_SOURCE", str(home / "source"))
    mp.setenv("LENET_WORKERS", "2")
    yield {"home": home, "source": net, "ds": ds}
    mp.undo()


def page(path: str | None = None, sid: str = SID) -> AppTest:
    return open_app(path, sid)


def until(at: AppTest, done, timeout: float = 45.0) -> None:
    """Rerun the page until done(at) holds (the job runs in a background thread meanwhile)."""
    end = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < end, "the job did not finish in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]


def ui_pool():
    import ui
    return ui.pool()


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_home_shows_the_live_architecture_and_active_net(env):
    at = page()
    assert at.query_params["sid"] == [SID] or at.query_params["sid"] == SID
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset"] == "synthetic"
    assert metrics["Source net"] == "20 characters"
    table = next(m.value for m in at.markdown if "free parameters" in m.value)
    params = [int(line.split("|")[4].replace(",", "")) for line in table.splitlines()[2:]]
    assert params == [0, 156, 12, 1516, 32, 48120, 2420]


def test_source_page_controls_bad_inputs_and_a_short_training_job(env):
    at = page("app_pages/source.py")
    assert at.radio(key="src-kind").value == "synthetic"
    assert at.multiselect(key="src-chars").value == env["source"].classes
    at.radio(key="src-kind").set_value("synthetic").run()
    # fewer than 2 characters
    at.multiselect(key="src-chars").set_value(["A"]).run()
    button(at, "Start training").click().run()
    assert "at least 2" in texts(at.error)
    # more samples than a class has
    at.multiselect(key="src-chars").set_value(["A", "B"]).run()
    at.number_input(key="src-per-class").set_value(5000).run()
    button(at, "Start training").click().run()
    assert "has 500 samples" in texts(at.error)
    assert at.toggle(key="src-drawn").value, "drawn copies are on by default, as in train-source"
    # a short job, started and finished
    at.number_input(key="src-per-class").set_value(20)
    at.number_input(key="src-heldout").set_value(5)
    at.number_input(key="src-epochs").set_value(1).run()
    button(at, "Start training").click().run()
    until(at, lambda a: "Done" in texts(a.success))
    assert any(b.label == "Make it the active source net" for b in at.button)


def test_source_page_opens_only_the_operators_data_folders_or_an_upload(env, tmp_path, monkeypatch):
    """A browser cannot probe the server's files: every path outside LENET_DATA_DIRS gets the
    same message, whether it exists or not; inside them, or as an upload, EMNIST loads."""
    import io
    import zipfile
    from lenet.data.base import BYCLASS
    from lenet.data.idx import write_idx
    data = tmp_path / "data"
    (data / "emnist").mkdir(parents=True)
    images = np.zeros((12, 28, 28), np.uint8)
    images[:, 2:26, 5] = 255
    write_idx(data / "emnist" / "emnist-byclass-test-images-idx3-ubyte.gz", images)
    write_idx(data / "emnist" / "emnist-byclass-test-labels-idx1-ubyte.gz", np.arange(12, dtype=np.uint8))
    (data / "emnist" / "emnist-byclass-mapping.txt").write_text("".join(f"{i} {ord(c)}\n" for i, c in enumerate(BYCLASS)))
    (tmp_path / "secret").mkdir()
    (data / "escape").symlink_to(tmp_path / "secret")
    monkeypatch.setenv("LENET_DATA_DIRS", str(data))
    at = page("app_pages/source.py", sid=uuid.uuid4().hex)
    at.radio(key="src-kind").set_value("path").run()
    refusals = []
    for probe in ("/etc/passwd", str(tmp_path / "secret"), "/no/such/emnist", f"{data}/../secret",
                  str(data / "escape"), "../../../../etc"):
        at.text_input(key="src-path").set_value(probe).run()
        button(at, "Use this dataset").click().run()
        refusals.append(texts(at.error))
    assert len(set(refusals)) == 1, refusals
    assert "only datasets inside the server's data folders" in refusals[0]
    assert "passwd" not in refusals[0] and "secret" not in refusals[0] and "no such" not in refusals[0]
    # an upload: a broken zip is refused by the EMNIST reader, a good one is used
    at.file_uploader(key="src-zip").upload("broken.zip", b"PK\x03\x04 not really a zip").run()
    button(at, "Use this dataset").click().run()
    assert "broken.zip" in texts(at.error)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in (data / "emnist").iterdir():
            z.write(f, f"gzip/{f.name}")
    at.file_uploader(key="src-zip").set_value(("gzip.zip", buf.getvalue(), "application/zip")).run()
    button(at, "Use this dataset").click().run()
    assert not at.error and "Using emnist" in texts(at.success)
    assert "12 characters" in texts(at.caption)
    # a typed path inside the configured folder
    at.file_uploader(key="src-zip").set_value(None).run()
    at.text_input(key="src-path").set_value(str(data / "emnist")).run()
    button(at, "Use this dataset").click().run()
    assert not at.error and "Using emnist (emnist)." in texts(at.success)  # its name, not the server's path


def test_transfer_page_prevents_overlap_and_runs_a_job(env):
    at = page("app_pages/transfer.py")
    source = env["source"].classes
    chars = at.multiselect(key="tr-chars")
    assert len(chars.value) == 20 and not set(chars.value) & set(source)
    assert not set(chars.options) & set(source)  # the source net's characters are never offered
    assert at.slider(key="tr-n").value == 4
    assert "96.7%" in texts(at.caption)  # trainable share at n = 4 (the paper's figure)
    at.multiselect(key="tr-chars").set_value(chars.value[:3]).run()
    at.number_input(key="tr-k").set_value(1000).run()
    button(at, "Start").click().run()
    assert "too few" in texts(at.error)
    at.number_input(key="tr-k").set_value(2)
    at.number_input(key="tr-epochs").set_value(3).run()
    button(at, "Start").click().run()
    until(at, lambda a: "Done" in texts(a.success))
    assert at.table, "the finished run is in the session's results table"
    runs = at.table[-1].value
    assert runs["n"].tolist()[-1] == "4"
    import ui
    mine = sorted(ui.sessions()[SID].runs)
    assert runs["run"].tolist()[-1] == f"Run {len(mine)}", "numbered within the session, not the pool"
    done = ui_pool().get(mine[-1])
    epochs = [r for r in done.snapshot().records if r.get("kind") == "epoch"]
    assert epochs and all(r["test_acc"] is not None for r in epochs)  # a test point every epoch: the curve
    # a long run stops within a second of pressing Stop
    at.slider(key="tr-n").set_value(0)
    at.number_input(key="tr-k").set_value(40)
    at.number_input(key="tr-epochs").set_value(1000).run()
    button(at, "Start").click().run()
    stop = next(b for b in at.button if b.label == "Stop")
    job = ui_pool().get(int(stop.key.rsplit("-", 1)[1]))
    assert not job.wait(0.5), "the long run is still going"
    until(at, lambda a: job.snapshot().records, timeout=60)  # training has begun (its worker may start slowly)
    t = time.monotonic()
    stop.click().run()
    assert job.wait(1.0) and time.monotonic() - t < 1.5
    until(at, lambda a: "Stopped" in texts(a.warning))
    # the stopped run keeps its net: listed for download (and on Draw and Feature maps)
    until(at, lambda a: any(o.endswith("(stopped)") for o in a.selectbox(key="tr-net").options))
    assert at.get("download_button")


def test_a_failed_job_shows_its_reason_and_the_page_keeps_working(env):
    import ui
    from lenet.core.train import TrainingError

    def blow_up(job):
        raise TrainingError("the training loss became nan at epoch 3")
    job = ui_pool().submit(blow_up, name="n=2 k=1 trial 0", owner=SID)
    ui.sessions()[SID].runs[job.id] = dict(kind="transfer", label="n=2 k=1 trial 0", n=2, k=1, trial=0,
                                            classes=["a", "b"])
    assert job.wait(5)
    at = page("app_pages/transfer.py")
    assert "Failed: TrainingError: the training loss became nan at epoch 3" in texts(at.error)
    assert "failed" in at.table[-1].value["state"].tolist()
    assert any(b.label == "Start" for b in at.button), "the page still works"


def test_maps_page_shows_a_transferred_net_beside_its_source(env):
    at = page("app_pages/maps.py")
    nets = at.selectbox(key="maps-net")
    assert nets.options[0].startswith("source net")
    transferred = [o for o in nets.options if "n=4" in o]
    assert transferred, "the transfer run from the previous test is listed"
    nets.set_value(transferred[-1]).run()
    assert not at.exception
    assert "Identical maps at: C1, S2, C3, S4" in texts(at.info)
    assert len(at.get("plotly_chart")) >= 6  # kernels + C1 + C3, for both nets


def test_draw_page_asks_for_a_drawing_and_classifies_canvas_pixels(env):
    import ui
    from lenet.drawing.canvas import BlankImage
    at = page("app_pages/draw.py")
    assert "Draw a character" in texts(at.info)
    assert not at.metric, "an empty canvas never shows a made-up prediction"
    rgba = np.full((280, 280, 4), 255, np.uint8)
    with pytest.raises(BlankImage):
        ui.classify(env["source"], rgba)
    rgba[40:240, 120:140, :3] = 0  # a black vertical bar: a "1" / "I"
    image, ranking = ui.classify(env["source"], rgba)
    assert image.shape == (28, 28) and image.max() > 200 and image[0, 0] == 0
    assert len(ranking) == 5 and ranking[0][0] in env["source"].classes
    assert [d for _, d in ranking] == sorted(d for _, d in ranking)


def test_teach_page_names_trains_and_keeps_samples(env):
    from lenet.drawing.store import SampleStore
    at = page("app_pages/teach.py")
    assert "Name a character" in texts(at.info)
    at.text_input(key="teach-new").set_value(env["source"].classes[0]).run()
    button(at, "Add character").click().run()
    assert "source net's characters" in texts(at.error)
    for name in ("α", "☺"):
        at.text_input(key="teach-new").set_value(name).run()
        button(at, "Add character").click().run()
    assert at.radio(key="teach-char").options == ["α", "☺"]
    assert at.radio(key="teach-char").value == "☺", "the character just named is the one to draw"
    assert at.text_input(key="teach-new").value == "", "the name box is empty for the next name"
    button(at, "Add this drawing to ☺").click().run()
    assert "Draw the character" in texts(at.error)
    button(at, "Train on my drawings").click().run()
    assert "at least 2 characters" in texts(at.error)
    # samples as the canvas would add them (a stand-in for drawing), stored in this session's folder
    store = SampleStore(env["home"] / "sessions" / SID / "teach")
    ds = env["ds"]
    for name, src in (("α", "v"), ("☺", "o")):
        for img in ds.images[ds.labels == ds.classes.index(src)][:4]:
            store.add(name, img)
    at = page("app_pages/teach.py")  # a reload: the drawings are still there
    assert "4 sample(s)" in texts(at.markdown)
    assert at.toggle(key="teach-augment").value, "Teach augments drawn samples by default"
    at.number_input(key="teach-epochs").set_value(20).run()
    button(at, "Train on my drawings").click().run()
    until(at, lambda a: "Done" in texts(a.success))
    assert any(m.value.startswith("4. Test it") for m in at.subheader)


def test_experiments_page_runs_a_small_grid(env):
    at = page("app_pages/experiments.py")
    at.multiselect(key="ex-levels").set_value([]).run()
    button(at, "Run the grid").click().run()
    assert "at least one" in texts(at.error)
    at.multiselect(key="ex-levels").set_value([4, 5])
    at.multiselect(key="ex-k").set_value([1])
    at.multiselect(key="ex-seeds").set_value([0, 3])
    at.number_input(key="ex-trials").set_value(1)
    at.number_input(key="ex-steps").set_value(6).run()
    assert "4 runs." in texts(at.caption)
    button(at, "Run the grid").click().run()
    until(at, lambda a: "Done" in texts(a.success), timeout=90)
    assert "Done: 4 run(s) in" in texts(at.success)  # runs, not "0 epoch(s)"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # Figure 2 and min/avg/max for k=1, once: under "Your finished results"
    assert at.selectbox(key="ex-reopen").options, "the finished grid can be reopened"
    home = str(env["home"])
    shown = texts(at.caption) + texts(at.markdown) + texts(at.success) + texts(at.error)
    assert home not in shown and "/root" not in shown  # no server paths for browser users
    out = sorted((env["home"] / "experiments").glob("*/*"))[-1]
    assert {p.name for p in out.iterdir()} >= {"seed-0", "seed-3", "seeds.csv", "claims.csv"}
    # one of its runs trained again the same way, to see what it misread: the grid's own score again
    runs = at.selectbox(key="ex-closer-run")
    assert len(runs.options) == 4
    runs.set_value(3).run()
    button(at, "Train it again and show what it misread").click().run()
    until(at, lambda a: any(s.key == "ex-closer-cell" for s in a.selectbox), timeout=60)  # its misreadings
    grid_acc = float(runs.options[3].split("test accuracy ")[1].rstrip("%)")) / 100
    again = [j for j in ui_pool().jobs(SID) if "again" in j.meta.get("label", "")][-1].snapshot().result
    assert abs(again.meta["test_acc"] - grid_acc) < 0.011, (again.meta["test_acc"], grid_acc)
    assert "were read as" in texts(at.caption)


def test_studies_page_shows_the_shipped_results_on_open_without_a_job(env):
    """Each shipped study (assets/results-studies: three class splits) with its figures, 95% intervals and
    ranges over the splits the moment /studies opens in a new session; nothing trains."""
    from lenet import studies
    from lenet.studies.tables import have_shipped
    shipped = [n for n in studies.NAMES if have_shipped(n)]
    assert "partial" in shipped, "assets/results-studies ships the studies (python -m lenet study all --seeds 0 1 2)"
    sid = uuid.uuid4().hex  # a session id the app keeps (32 hex digits), so the check below can fail
    at = page("app_pages/studies.py", sid=sid)
    for name in studies.NAMES:
        at.selectbox(key="st-name").set_value(name).run()
        assert not at.exception
        labels = [e.label for e in at.expander]
        if name not in shipped:
            assert not any(label.startswith("Shipped results") for label in labels)
            continue
        assert f"Shipped results: {name} on 3 class splits (seeds 0, 1, 2)" in labels, labels
        if name == "source-classes":  # and S in the hundreds (assets/results-hundreds), folded below it
            assert "Shipped results: source-classes, S in the hundreds (preset hundreds) on 3 class splits " \
                   "(seeds 0, 1, 2)" in labels, labels
        assert len(at.get("plotly_chart")) >= 1, f"{name}: a figure from the shipped CSVs"
        cells = " ".join(str(v) for t in at.table for v in t.value.to_numpy().ravel())
        assert "[" in cells and " to " in cells, f"{name}: intervals and ranges over the splits"
    assert not at.success and not (env["home"] / "studies" / sid).exists(), "no job was started"


def test_studies_page_lists_the_studies_runs_a_quick_one_and_reopens_it(env):
    from lenet import studies
    at = page("app_pages/studies.py")
    shown = texts(at.markdown)
    for name in studies.NAMES:
        assert studies.get(name).QUESTION in shown, f"{name}'s question is listed"
    assert at.selectbox(key="st-name").options == [f"{n}: {studies.get(n).TITLE}" for n in studies.NAMES]
    at.selectbox(key="st-name").set_value("partial").run()
    assert at.toggle(key="st-quick").value is True
    button(at, "Run the study").click().run()
    until(at, lambda a: "Done" in texts(a.success), timeout=300)  # ~40 s on 2 idle cores
    assert len(at.get("plotly_chart")) >= 1, "the finished study's figure, once"
    assert at.selectbox(key="st-reopen").options, "the finished study can be reopened"
    rows = at.table[-1].value
    assert set(rows["criterion"]) == {"saliency", "taylor", "mutual-info", "random"}
    assert "python -m lenet study partial --quick" in at.code[0].value
    shown = texts(at.caption) + texts(at.markdown) + texts(at.code)
    assert str(env["home"]) not in shown, "no server paths for browser users"


def test_studies_page_runs_a_study_with_one_of_its_presets(env):
    """source-classes names a preset (hundreds): the page offers it only there, and the quick version runs with
    it as a job, its command and settings saying so (the Omniglot characters in the source pool, S = 100)."""
    import json
    sid = uuid.uuid4().hex
    at = page("app_pages/studies.py", sid=sid)
    at.selectbox(key="st-name").set_value("partial").run()
    assert not [s for s in at.selectbox if s.label == "Settings"], "a study without presets shows no choice"
    at.selectbox(key="st-name").set_value("source-classes").run()
    box = at.selectbox(key="st-preset-source-classes")
    assert box.options[0].startswith("default") and box.options[1].startswith("hundreds: S up to 200")
    box.set_value("hundreds").run()
    button(at, "Run the study").click().run()
    until(at, lambda a: "Done" in texts(a.success), timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    done = max((env["home"] / "studies" / sid).glob("source-classes-quick-hundreds-*"))
    meta = json.loads((done / "meta.json").read_text())
    assert meta["settings"]["pool"] == "data+omniglot" and meta["settings"]["class_counts"] == [2, 100]
    assert "--quick --preset hundreds" in meta["command"]
