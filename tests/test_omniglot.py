"""Omniglot's reader: archives read in memory, framed like EMNIST, alphabets as groups, one clear
error for a bad archive; the one-shot runs paired as the dataset's demo pairs them."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lenet.cli import main
from lenet.config import STROKE_WIDTH
from lenet.data import DataError, info, load
from lenet.data import omniglot as O
from lenet.ink.strokes import width


def _drawing(seed: int, pen: int) -> bytes:
    """A 105x105 one-bit PNG, black ink on white, as Omniglot stores it: a seeded polyline."""
    im = Image.new("1", (105, 105), 1)
    pts = [tuple(int(v) for v in p) for p in np.random.default_rng(seed).integers(15, 90, (4, 2))]
    ImageDraw.Draw(im).line(pts, fill=0, width=pen)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _background(path, root="images_background_small1", alphabets=("Korean", "Latin"), chars=2, drawers=3,
                pen=3):
    return _zip(path, {f"{root}/{a}/character{c:02d}/{100 + c:04d}_{d:02d}.png":
                       _drawing(sum(map(ord, a)) * 1000 + c * 20 + d, pen)  # a drawing per drawer, deterministic
                       for a in alphabets for c in range(1, chars + 1) for d in range(1, drawers + 1)})


def test_background_archive_gives_named_characters_grouped_by_alphabet(tmp_path):
    _background(tmp_path / "images_background_small1.zip")
    _background(tmp_path / "images_background_small2.zip", "images_background_small2", ("Latin", "Tagalog"))
    ds = load("omniglot", tmp_path)
    # Latin is in both archives (as Greek and Latin are in the real small1 and small2): counted once
    assert ds.classes == ["Korean/character01", "Korean/character02", "Latin/character01", "Latin/character02",
                          "Tagalog/character01", "Tagalog/character02"]
    assert O.alphabets(ds) == {"Korean": ds.classes[:2], "Latin": ds.classes[2:4], "Tagalog": ds.classes[4:]}
    assert list(ds.counts().values()) == [3] * 6
    assert ds.images.shape == (18, 28, 28) and ds.images.dtype == np.uint8
    assert ds.source == "omniglot-background_small1+background_small2"
    d = info("omniglot", tmp_path)
    assert d["active"] == "Omniglot background" and d["n"] == 18


def test_framing_is_emnists_whatever_the_pen(tmp_path):
    """Ink high on black, 28x28, the character filling the frame, and EMNIST's stroke width from a thin or
    a thick pen (the raw framing of the thick pen is far thicker)."""
    thin = load("omniglot", _background(tmp_path / "images_background_a.zip", pen=2))
    thick = load("omniglot", _background(tmp_path / "images_background_b.zip", pen=9))
    for ds in (thin, thick):
        assert ds.images.max(axis=(1, 2)).min() == 255
        assert ds.images[:, 0, :].max() < 64 and ds.images[:, :, 0].max() < 64  # the border is (nearly) paper
        assert np.mean([width(im) for im in ds.images]) == pytest.approx(STROKE_WIDTH, abs=0.6)
    raw = O.frame_character(np.asarray(Image.open(io.BytesIO(_drawing(1, 9))).convert("L"), np.float32),
                            ink_is_dark=True)
    assert width(raw) > STROKE_WIDTH + 1.0


@pytest.mark.parametrize("case, message", [
    ("corrupt", "not a readable zip archive"),
    ("empty", "no character images"),
    ("layout", "not laid out as ALPHABET/characterNN/NNNN_MM.png"),
    ("png", "is damaged"),
    ("unsafe", "unsafe member name"),
])
def test_bad_archives_get_one_clear_error(tmp_path, case, message):
    path = tmp_path / "images_background_small1.zip"
    if case == "corrupt":
        good = _background(tmp_path / "good.zip").read_bytes()
        path.write_bytes(good[:len(good) // 2])
    elif case == "empty":
        _zip(path, {"images_background_small1/README.txt": b"nothing here"})
    elif case == "layout":
        _zip(path, {"images_background_small1/Korean/0101_01.png": _drawing(0, 3)})
    elif case == "png":
        _zip(path, {"images_background_small1/Korean/character01/0101_01.png": b"\x89PNG\r\n\x1a\nbroken"})
    else:
        _zip(path, {"../Korean/character01/0101_01.png": _drawing(0, 3)})
    with pytest.raises(DataError, match=message):
        load("omniglot", tmp_path)


def test_no_archive_is_a_data_error_and_the_cli_says_so(tmp_path, capsys):
    with pytest.raises(DataError, match="no Omniglot archive"):
        load("omniglot", tmp_path)
    assert main(["data", "info", "--data", "omniglot", "--data-dir", str(tmp_path)]) == 2
    assert "error: no Omniglot archive" in capsys.readouterr().err


def test_cli_data_info_reads_omniglot(tmp_path, capsys):
    _background(tmp_path / "images_background_small1.zip")
    assert main(["data", "info", "--data", "omniglot", "--data-dir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["classes"][0] == "Korean/character01" and out["n"] == 12


def _runs_zip(path, labels: dict[str, list[tuple[str, str]]]):
    members = {}
    for run, pairs in labels.items():
        members[f"{run}/class_labels.txt"] = "\n".join(f"{t} {c}" for t, c in pairs).encode()
        for t, c in pairs:
            members[c] = _drawing(int(c[-6:-4]), 3)  # a test drawing is its class's drawing
            members[t] = _drawing(int(c[-6:-4]), 3)
    return _zip(path, members)


def test_runs_pair_each_test_drawing_with_its_class(tmp_path):
    pairs = [("run01/test/item01.png", "run01/training/class03.png"),
             ("run01/test/item02.png", "run01/training/class01.png"),
             ("run01/test/item03.png", "run01/training/class02.png")]
    _runs_zip(tmp_path / O.RUNS, {"run01": pairs})
    (run,) = O.load_runs(tmp_path)
    assert run.answers.tolist() == [2, 0, 1]
    assert run.train_files == ["run01/training/class01.png", "run01/training/class02.png",
                               "run01/training/class03.png"]
    assert np.array_equal(run.test[0], run.train[2]) and run.train.shape == (3, 28, 28)


def test_runs_naming_a_missing_file_get_a_clear_error(tmp_path):
    path = _runs_zip(tmp_path / O.RUNS, {"run01": [("run01/test/item01.png", "run01/training/class01.png")]})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("run02/class_labels.txt", "run02/test/item01.png run02/training/class01.png")
        z.writestr("run02/test/item01.png", _drawing(0, 3))
    with pytest.raises(DataError, match="names run02/training/class01.png, which is not in the archive"):
        O.load_runs(tmp_path)


def test_shipped_benchmark_has_twenty_runs_of_twenty():
    runs = O.load_runs(O.SHIPPED_DIR)
    assert len(runs) == O.N_RUNS
    for r in runs:
        assert r.train.shape == r.test.shape == (20, 28, 28)
        assert sorted(r.answers.tolist()) == list(range(20))  # one test drawing per class
        assert r.train_ink[0].shape == (105, 105) and r.train_ink[0].dtype == bool


def test_new_characters_from_an_alphabet_set_without_a_default_split(tmp_path):
    """20 drawers per class is too few for the default source half: the new characters are a seeded pick
    of the classes the source net does not know; a source that knows them all gets a clear error."""
    from lenet.data.protocol import new_characters
    ds = load("omniglot", _background(tmp_path / "images_background_small1.zip", chars=3, drawers=2))
    picked = new_characters(ds, list("ABC"), seed=0, n=4)
    assert len(picked) == 4 and set(picked) <= set(ds.classes)
    with pytest.raises(DataError, match="knows every class"):
        new_characters(ds, ds.classes, seed=0)


def test_alphabet_split_trains_on_k_drawers_and_tests_on_the_rest(tmp_path):
    ds = load("omniglot", _background(tmp_path / "images_background_small1.zip", drawers=5))
    chars = O.alphabets(ds)["Korean"]
    split = O.alphabet_split(ds, list("ABC"), chars, k=2, trial=0, seed=0)
    assert split.classes == chars and len(split.train) == 2 * 2 and len(split.test) == 3 * 2
    train = {im.tobytes() for im in split.train.images}
    assert not train & {im.tobytes() for im in split.test.images}  # different drawers
    for k in (0, 5):
        with pytest.raises(DataError, match="k must be 1..4 for Omniglot characters"):
            O.alphabet_split(ds, [], chars, k=k)


def test_distorted_copies_are_seeded_affine_variants():
    from lenet.ink.distort import distorted_copies
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 6:22, 13:15] = 255  # a bar
    images[1, 13:15, 6:22] = 255  # a dash
    x, y = distorted_copies(images, np.array([0, 1]), copies=3, seed=5)
    assert x.shape == (8, 28, 28) and y.tolist() == [0, 1] * 4
    assert np.array_equal(x[:2], images)  # the originals first, unchanged
    assert all(not np.array_equal(x[i], images[i % 2]) for i in range(2, 8))  # every copy moved
    mass = x.reshape(8, -1).sum(1) / images.reshape(2, -1).sum(1)[np.arange(8) % 2]  # ink of copy / original
    assert ((mass > 0.5) & (mass < 1.6)).all()  # scaled by 0.8-1.2 per axis, nothing lost off the frame
    assert np.array_equal(distorted_copies(images, np.array([0, 1]), 3, seed=5)[0], x)  # seeded


def test_train_source_on_omniglot_names_with_distorted_copies(tmp_path, capsys):
    data = _background(tmp_path / "images_background_small1.zip", chars=2, drawers=6)
    out = tmp_path / "net"
    assert main(["train-source", "--data", "omniglot", "--data-dir", str(data.parent), "--classes", "all",
                 "--per-class", "4", "--heldout", "2", "--distort", "2", "--epochs", "1", "--out", str(out),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["classes"] == "Korean/character01,Korean/character02,Latin/character01,Latin/character02"
    assert json.loads((out / "config.json").read_text())["meta"]["train_per_class"] == 4 * 3


def test_emnist_and_omniglot_mix_into_one_background(tmp_path, capsys):
    """emnist+omniglot: EMNIST's classes at 20 drawings each (as Omniglot's drawers), then Omniglot's, one set."""
    from lenet.data import CharacterSet, MIX_EMNIST_PER_CLASS, mix
    em = CharacterSet(np.arange(90 * 4, dtype=np.uint8).reshape(90, 2, 2).repeat(14, 1).repeat(14, 2),
                      np.repeat(np.arange(3), 30), list("abc"), "emnist-test", "EMNIST")
    og = load("omniglot", _background(tmp_path / "images_background_small1.zip"))
    both = mix(em, og)
    assert both.classes == ["a", "b", "c", *og.classes] and both.source == "emnist+omniglot"
    assert list(both.counts().values()) == [MIX_EMNIST_PER_CLASS] * 3 + [3] * len(og.classes)
    assert np.array_equal(both.images[-len(og):], og.images)  # Omniglot's drawings as they were
    for i, c in enumerate("abc"):  # each EMNIST drawing kept under its own class
        ours = {im.tobytes() for im in both.images[both.labels == i]}
        assert ours <= {im.tobytes() for im in em.images[em.labels == i]}
    assert main(["data", "info", "--data", "emnist+omniglot", "--data-dir", str(tmp_path)]) == 2
    assert "emnist+omniglot takes no --data-dir" in capsys.readouterr().err
