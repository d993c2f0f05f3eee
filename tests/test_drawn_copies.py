"""Reading drawings as well as scans (issue #22): drawn copies, the scored stopping point,
calibrated confidences, and normalising from the pen's trajectory."""
import json
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch

from lenet.config import DRAWN_SOURCE, SOURCE_RECIPE, STROKE_WIDTH
from lenet.core import calibration
from lenet.data import CharacterSet, load
from lenet.data.protocol import Split, default_class_split, source_split, source_val
from lenet.drawing import drawn
from lenet.drawing.augment import augment_split, drawn_copies
from lenet.drawing.canvas import canvas_to_image, fabric_paths, trajectory_to_image
from lenet.ink import strokes


@pytest.fixture(scope="module")
def synth():
    ds = load("synthetic")
    return ds, default_class_split(ds.classes)[0]


def test_drawn_copies_are_seeded_labelled_drawings_of_their_originals(synth):
    ds, chars = synth
    few = source_split(ds, chars[:4], 5, 1).train  # 20 characters
    half = drawn_copies(few, replace(DRAWN_SOURCE, copies=1.5), seed=3)
    assert 20 + 5 <= len(half) <= 20 + 15 and half.images.dtype == np.uint8 and half.images.shape[1:] == (28, 28)
    assert np.array_equal(half.images, drawn_copies(few, replace(DRAWN_SOURCE, copies=1.5), seed=3).images)
    assert set(half.labels.tolist()) == set(few.labels.tolist())
    one = drawn_copies(few, replace(DRAWN_SOURCE, copies=1.0), seed=3)
    assert np.array_equal(one.labels, few.labels)
    # a drawing, not the scan: EMNIST's stroke width, and the same character (correlated with its original)
    assert np.mean([strokes.width(im) for im in one.images]) == pytest.approx(STROKE_WIDTH, abs=0.6)
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(one.images, few.images)]
    assert 0.3 < np.median(corr) < 0.97
    aug = augment_split(Split(few, few, few.classes), replace(DRAWN_SOURCE, copies=2.0))
    assert len(aug.train) == 60 and len(aug.test) == 20 and np.array_equal(aug.train.images[:20], few.images)


def test_the_source_stopping_point_is_read_on_the_scanned_characters_alone(synth):
    """With extra views that contradict the scans (mislabelled copies), the training accuracy fit stops on is still the
    scanned characters' own: exactly what the returned net reads on them."""
    from lenet.core.net import train_source
    ds, chars = synth
    split = source_split(ds, chars[:6], 30, 5)
    noise = CharacterSet(split.train.images[:60].copy(), (split.train.labels[:60] + 1) % 6,  # mislabelled
                         split.classes, ds.source, "mislabelled")
    net, fit = train_source(split, SOURCE_RECIPE.replace(max_epochs=9, lr=0.05, batch_size=8), extra=noise,
                            extra_meta={"what": "mislabelled"})
    assert fit.train_acc == pytest.approx(net.accuracy(split.train), abs=1e-6)
    assert net.meta["extra_train"] == len(noise) and net.meta["train_per_class"] == 30
    mixed = net.accuracy(CharacterSet(np.concatenate([split.train.images, noise.images]),
                                      np.concatenate([split.train.labels, noise.labels]), split.classes, "", ""))
    assert abs(fit.train_acc - mixed) > 0.02  # the mixed set reads otherwise: the test can tell them apart


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_the_calibration_error():
    g = torch.Generator().manual_seed(0)
    d = torch.rand(5000, 20, generator=g) * 4  # distances to 20 codes
    truth_t = 0.35
    y = torch.multinomial(torch.softmax(-d / truth_t, 1), 1, generator=g)[:, 0]
    t = calibration.fit_temperature(d, y)
    assert t == pytest.approx(truth_t, rel=0.1)
    grid = np.exp(np.linspace(np.log(0.05), np.log(5), 80))  # an independent check: brute force
    assert calibration.nll(d, y, t) <= min(calibration.nll(d, y, float(s)) for s in grid) + 1e-4
    good, bad = (calibration.ece(calibration.confidences(d, s), y) for s in (t, 5 * t))
    assert good < 0.02 < 0.1 < bad
    rep = calibration.report(d, y, t)
    assert rep["accuracy_when_sure"] > rep["accuracy"] > rep["accuracy_when_not_sure"]
    with pytest.raises(ValueError, match="no characters"):
        calibration.fit_temperature(d[:0], y[:0])


def test_a_thick_pen_keeps_its_loops_open_when_read_from_the_trajectory():
    ring = np.zeros((112, 112), bool)  # an "O": a circle of radius 40 at 112 px
    a = np.linspace(0, 2 * np.pi, 800)
    ring[np.round(56 + 40 * np.sin(a)).astype(int), np.round(56 + 40 * np.cos(a)).astype(int)] = True
    rgba, path = drawn.draw(ring, 40, 0.15, np.random.default_rng(0), trajectory=True)  # 40 px pen, 42 px ring
    raster, traj = canvas_to_image(rgba), trajectory_to_image(path)
    assert raster[12:16, 12:16].mean() > 150, "the raster's loop fills in (thinning cannot reopen it)"
    assert traj[12:16, 12:16].mean() < 30, "the trajectory's loop stays open"
    assert strokes.width(traj) == pytest.approx(STROKE_WIDTH, abs=0.6)


def test_fabric_paths_become_the_pens_centre_lines():
    objects = [{"type": "path", "path": [["M", 20, 30], ["Q", 60, 30, 100, 30], ["L", 100, 200]]},
               {"type": "rect", "left": 0}, {"type": "path", "path": [["M", "x"], ["Q", 1]]},
               {"type": "path", "path": [["M", float("nan"), 5], ["L", 1e300, float("inf")]]}, "junk", None]
    p = fabric_paths(objects, 280, 280)
    assert p.shape == (280, 280) and p[30, 20:101].all() and p[30:201, 100].all()
    assert p.sum() < 81 + 171 + 5  # one pixel wide
    assert trajectory_to_image(p).shape == (28, 28)


def test_source_validation_characters_are_beyond_the_training_and_held_out_draws(synth):
    ds, chars = synth
    split = source_split(ds, chars, 300, 100, seed=1)
    val = source_val(ds, chars, 300, 100, seed=1, val_per_class=40)
    assert val.counts() == {c: 40 for c in chars}
    seen = {im.tobytes() for im in np.concatenate([split.train.images, split.test.images])}
    assert not any(im.tobytes() in seen for im in val.images)


def test_train_source_adds_drawn_copies_and_calibrates_on_validation_characters(tmp_path, capsys):
    """On by default: drawn copies of the training characters, a temperature fitted on characters beyond the
    training and held-out draws (here the shipped EMNIST subset); --no-drawn is the paper's plain net."""
    from lenet.cli import main
    from lenet.core import checkpoint
    subset = Path(__file__).resolve().parents[1] / "assets" / "emnist-subset"
    common = ["train-source", "--data", "emnist", "--data-dir", str(subset), "--classes", "ABCDE", "--per-class", "20",
              "--heldout", "5", "--epochs", "2", "--json"]
    assert main([*common, "--drawn-copies", "0.5", "--out", str(tmp_path / "drawn")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 25 <= res["drawn_copies"] <= 75 and res["calibration"]["n"] == 2 * 5 * 40
    net = checkpoint.load(tmp_path / "drawn")
    assert net.meta["extra_train"] == res["drawn_copies"] and net.meta["augment"]["copies"] == 0.5
    assert net.temperature == pytest.approx(res["calibration"]["temperature"]) and net.temperature > 0
    top = net.read(np.asarray(load("emnist", str(subset)).images[0]), 3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and sum(p for _, p in top) <= 1 + 1e-6
    assert main([*common, "--no-drawn", "--out", str(tmp_path / "plain")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["drawn_copies"] == 0 and res["calibration"] is None
    assert checkpoint.load(tmp_path / "plain").temperature is None


def _panel(net_dir: str, temperature: float | None):
    """A page that shows ui.prediction_panel for a drawn bar with the net in net_dir at this temperature."""
    import numpy as np
    import ui
    from lenet.core import checkpoint
    net = checkpoint.load(net_dir)
    net.meta["temperature"] = temperature
    net.meta["calibration"] = {"ece": 0.031}
    rgba = np.full((280, 280, 4), 255, np.uint8)
    rgba[40:240, 120:140, :3] = 0  # a black vertical bar
    ui.prediction_panel(net, rgba, "draw")


def test_the_reading_shows_the_top_3_with_calibrated_confidences_or_says_not_sure(tmp_path, synth):
    from streamlit.testing.v1 import AppTest
    from lenet.core import checkpoint
    from lenet.core.net import train_source
    ds, chars = synth
    net, _ = train_source(source_split(ds, chars, 20, 2), SOURCE_RECIPE.replace(max_epochs=2, lr=0.05))
    checkpoint.save(net, tmp_path / "net")
    for t, sure in ((1e-3, True), (50.0, False)):  # a sharp softmax is sure; a flat one is not
        at = AppTest.from_function(_panel, args=(str(tmp_path / "net"), t), default_timeout=30).run()
        assert not at.exception, [e.value for e in at.exception]
        table = at.table[0].value
        assert list(table.columns) == ["character", "confidence"] and len(table) == 3
        shares = [int(p.rstrip("%")) for p in table["confidence"]]
        assert shares == sorted(shares, reverse=True)
        assert (at.metric[0].value == "not sure") != sure
        assert (at.metric[0].value == table["character"][0]) == sure
        assert "3.1%" in " ".join(c.value for c in at.caption)
    at = AppTest.from_function(_panel, args=(str(tmp_path / "net"), None), default_timeout=30).run()
    assert "distance to its code" in at.table[0].value.columns and len(at.table[0].value) == 5


def test_a_teach_job_trains_on_drawn_copies_of_the_samples(synth):
    """Teach's augmentation happens in the job (the worker): 3 copies of each of 3 samples -> 12 a character."""
    import threading
    from lenet.config import TRANSFER_RECIPE
    from lenet.core.net import train_source
    from lenet.runtime.tasks import TASKS
    ds, chars = synth
    source, _ = train_source(source_split(ds, chars[:4], 20, 2), SOURCE_RECIPE.replace(max_epochs=1))
    new = [c for c in ds.classes if c not in chars][:3]
    split = source_split(ds, new, 3, 1)

    class Job:
        stop_event = threading.Event()

        def record(self, **kw):
            pass
    recipe = TRANSFER_RECIPE.replace(max_epochs=2, max_steps=0)
    for copies, per_char in ((3.0, 12), (0.0, 3)):
        spec = {"n": 4, "recipe": recipe.to_dict(), "drawn": copies}
        fn, *args = TASKS["transfer"](spec, {"source": source}, {"split": split}, None)
        assert fn(Job(), *args).meta["k"] == per_char
