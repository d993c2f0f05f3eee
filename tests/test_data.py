import gzip
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lenet.data import CharacterSet, DataError, info, load, to_net_input
from lenet.data.base import BYCLASS
from lenet.ink.framing import frame_character
from lenet.data.idx import read_idx, write_idx
from lenet.data.protocol import PAPER, check_classes, default_class_split, source_split, transfer_split
from lenet.data.synthetic import FONTS, generate, glyph_covered

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emnist"


@pytest.fixture(scope="module")
def real():
    if not (SHARED / "emnist-byclass-test-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real EMNIST not found at {SHARED}")
    return load("emnist", SHARED)


def test_real_emnist_loads(real):
    assert real.images.shape == (116_323, 28, 28) and real.images.dtype == np.uint8
    assert real.classes == BYCLASS and real.source == "emnist-byclass-test"
    counts = real.counts()
    assert min(counts.values()) == 317 and counts["j"] == 317 and counts["1"] == 6330
    assert "116,323" in real.description


def test_real_emnist_is_upright(real):
    # 'L': ink down the left side and along the bottom; transposed it would be a 'Γ'
    m = real.images[real.labels == real.classes.index("L")].mean(0)
    left_top, right_top, right_bottom = m[4:14, 4:12].mean(), m[4:14, 16:24].mean(), m[21:25, 14:24].mean()
    assert left_top > 2 * right_top and right_bottom > 2 * right_top


def test_real_emnist_info_and_default_dir(real):
    d = info("emnist")  # default: ../shared/data/emnist
    assert d["n"] == 116_323 and d["counts"]["j"] == 317 and len(d["classes"]) == 62


def _fake_release(folder: Path, part: str = "test", n: int = 20, split: str = "byclass", mapping=True):
    """A tiny release in the official layout: images stored transposed, like EMNIST's."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 2:26, 5] = 255  # upright: a vertical bar in column 5
    labels = rng.integers(0, 62, n).astype(np.uint8)
    write_idx(folder / f"emnist-{split}-{part}-images-idx3-ubyte.gz", images.transpose(0, 2, 1))
    write_idx(folder / f"emnist-{split}-{part}-labels-idx1-ubyte.gz", labels)
    if mapping:
        (folder / f"emnist-{split}-mapping.txt").write_text("".join(f"{i} {ord(c)}\n" for i, c in enumerate(BYCLASS)))
    return images, labels


def test_fake_release_folder_train_and_test(tmp_path):
    x1, y1 = _fake_release(tmp_path, "train", 7, mapping=False)  # no mapping: the built-in one is used
    x2, y2 = _fake_release(tmp_path, "test", 5, mapping=False)
    ds = load("emnist", tmp_path)
    assert len(ds) == 12 and ds.source == "emnist-byclass-train+test"
    np.testing.assert_array_equal(ds.labels, np.concatenate([y1, y2]))
    assert ds.images[:, 10, 5].min() == 255 and ds.images[:, 5, 10].max() == 0  # transposed back


def test_idx_round_trip_raw_and_gz(tmp_path):
    a = np.random.default_rng(1).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name, 3), a)
    np.testing.assert_array_equal(read_idx((tmp_path / "a.idx").read_bytes()), a)


def test_idx_errors_are_specific(tmp_path):
    write_idx(tmp_path / "lab.gz", np.arange(10, dtype=np.uint8))
    with pytest.raises(DataError, match=r"lab.gz: not an IDX3 image file \(magic 2049, expected 2051\)"):
        read_idx(tmp_path / "lab.gz", 3)
    with pytest.raises(DataError, match=r"magic 1234"):
        read_idx(b"\x00\x00\x04\xd2" + bytes(8))
    raw = gzip.decompress((tmp_path / "lab.gz").read_bytes())
    with pytest.raises(DataError, match="truncated: expected 10 bytes, found 6"):
        read_idx(raw[:-4])
    with pytest.raises(DataError, match="implausible dimensions"):
        read_idx(b"\x00\x00\x08\x03" + (20_000_000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)


@pytest.mark.parametrize("break_it, message", [
    ("count", "5 images but .* has 4 labels"),
    ("label", r"labels \[70\] are not in the byclass mapping"),
    ("truncated", "truncated: expected 3920 bytes"),
    ("magic", r"not an IDX1 label file \(magic 2051"),
])
def test_broken_release_gives_data_error(tmp_path, break_it, message):
    _fake_release(tmp_path, n=5)
    lab = tmp_path / "emnist-byclass-test-labels-idx1-ubyte.gz"
    img = tmp_path / "emnist-byclass-test-images-idx3-ubyte.gz"
    if break_it == "count":
        write_idx(lab, np.zeros(4, np.uint8))
    elif break_it == "label":
        write_idx(lab, np.array([0, 1, 70, 2, 3], np.uint8))
    elif break_it == "truncated":
        img.write_bytes(gzip.compress(gzip.decompress(img.read_bytes())[:-100]))
    else:
        lab.write_bytes(img.read_bytes())
    with pytest.raises(DataError, match=message):
        load("emnist", tmp_path)


def test_zip_release_and_bad_zips(tmp_path):
    _fake_release(tmp_path / "src", n=6)
    good = tmp_path / "good" / "gzip.zip"
    good.parent.mkdir()
    with zipfile.ZipFile(good, "w") as z:
        for p in (tmp_path / "src").iterdir():
            z.write(p, f"gzip/{p.name}")
    assert len(load("emnist", good)) == 6 and len(load("emnist", good.parent)) == 6  # the zip, or its folder
    assert not (good.parent / "gzip").exists()  # read in memory, never extracted

    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("readme.txt", "no data")
    with pytest.raises(DataError, match="empty.zip: no EMNIST byclass files; expected emnist-byclass-test-images"):
        load("emnist", empty)

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../emnist-byclass-test-labels-idx1-ubyte.gz", b"x")
    with pytest.raises(DataError, match="evil.zip: refusing unsafe member name '../emnist"):
        load("emnist", evil)


def test_missing_data_and_bad_kind(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'nope'}: no such folder or file"):
        load("emnist", tmp_path / "nope")
    with pytest.raises(DataError, match="unknown data kind 'mnist'; valid kinds: synthetic, emnist, sd19"):
        load("mnist")


def test_sd19_tree(tmp_path):
    rng = np.random.default_rng(0)
    for code, n in (("30", 3), ("41", 2), ("61", 4)):
        for sub, count in (("hsf_0", n), ("train_" + code, 5)):  # train_XX must be ignored
            d = tmp_path / code / sub
            d.mkdir(parents=True)
            for i in range(count):
                img = np.full((128, 128), 255, np.uint8)
                img[30:90, 50 + rng.integers(-10, 10):70] = 0  # black ink on white
                Image.fromarray(img).convert("RGB").save(d / f"{sub}_{i}.png")
    (tmp_path / "notes").mkdir()
    ds = load("sd19", tmp_path)
    assert ds.classes == ["0", "A", "a"] and ds.counts() == {"0": 3, "A": 2, "a": 4}
    assert ds.images.shape == (9, 28, 28) and ds.images.max() == 255 and ds.images[:, 0, 0].max() == 0


def test_to_net_input():
    x = to_net_input(np.array([np.zeros((28, 28)), np.full((28, 28), 255)], np.uint8))
    assert x.shape == (2, 1, 32, 32) and str(x.dtype) == "torch.float32"
    assert float(x.min()) == pytest.approx(-0.1) and float(x.max()) == pytest.approx(1.175)
    assert float(x[1, 0, 0, 0]) == pytest.approx(-0.1)  # the 2 px padding is background


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (300, 2), (256, 256), (40, 900)])
def test_frame_character_any_size(shape):
    a = np.zeros(shape, np.float64)
    a[shape[0] // 3:, : max(1, shape[1] // 2)] = 0.7
    out = frame_character(a, ink_is_dark=False)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255


def test_frame_character_centres_and_keeps_aspect():
    a = np.full((200, 200), 255, np.uint8)
    a[5:65, 150:170] = 0  # a 60 x 20 dark bar in the top-right corner
    out = frame_character(a, ink_is_dark=True).astype(float)
    ys, xs = np.indices(out.shape)
    cy, cx = (ys * out).sum() / out.sum(), (xs * out).sum() / out.sum()
    assert abs(cy - 13.5) < 0.5 and abs(cx - 13.5) < 0.5
    cols = np.flatnonzero(out.max(0) > 64)
    assert 6 <= len(cols) <= 12  # still a tall thin bar (about 20/64 of 28 wide)


def test_frame_character_blank():
    for blank in (np.zeros((50, 50)), np.full((9, 9), 255, np.uint8)):
        with pytest.raises(DataError, match="the image is blank: no ink found"):
            frame_character(blank, ink_is_dark=blank.dtype == np.uint8)


def test_fonts_cover_all_62_characters():
    assert len(FONTS) >= 8
    missing = [(f, c) for f in FONTS for c in BYCLASS if not glyph_covered(f, c)]
    assert missing == []
    assert not glyph_covered(FONTS[0], "\u4e00")  # a CJK character these fonts lack is detected


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LENET_CACHE", str(tmp_path_factory.mktemp("cache")))
        t = time.perf_counter()
        first = load("synthetic", per_class=40)
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        second = load("synthetic", per_class=40)
        t_second = time.perf_counter() - t
    return first, second, t_first, t_second


def test_synthetic_set_and_cache(synthetic):
    first, second, t_first, t_second = synthetic
    assert first.classes == BYCLASS and first.counts() == {c: 40 for c in BYCLASS}
    assert "synthetic" in first.description and first.source == "synthetic"
    np.testing.assert_array_equal(first.images, second.images)
    assert t_second < t_first / 5  # the second load reads the .npz


def test_synthetic_is_deterministic_by_seed():
    a, b, c = generate(1, per_class=2), generate(1, per_class=2), generate(2, per_class=2)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)


def test_synthetic_classes_are_learnable(synthetic):
    """1-nearest-neighbour on raw pixels, on a paper-sized task (20 classes, chance 5 %)."""
    _, target = default_class_split(BYCLASS, seed=0)
    s = transfer_split(synthetic[0], target, k=30, test_per_class=10, val_per_class=0)
    x, xt = (d.images.reshape(len(d), -1).astype(np.float32) for d in (s.train, s.test))
    nearest = ((xt[:, None] - x[None]) ** 2).sum(-1).argmin(1)
    assert (s.train.labels[nearest] == s.test.labels).mean() > 0.5


@pytest.fixture(scope="module")
def tagged():
    """120 samples of each of 62 classes; each image carries its row number, to check disjointness."""
    n = 62 * 120
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, :4] = np.arange(n, dtype=np.uint32).view(np.uint8).reshape(n, 4)
    labels = np.repeat(np.arange(62), 120)
    return CharacterSet(images, labels, list(BYCLASS), "tagged", "test set")


def _ids(ds):
    return np.ascontiguousarray(ds.images[:, 0, :4]).view(np.uint32).ravel()


def test_default_class_split():
    src, tgt = default_class_split(BYCLASS, seed=3)
    assert len(src) == len(tgt) == PAPER["n_classes"] and not set(src) & set(tgt)
    assert src == sorted(src, key=BYCLASS.index) and (src, tgt) == default_class_split(BYCLASS, seed=3)
    assert (src, tgt) != default_class_split(BYCLASS, seed=4)


def test_source_split(tagged):
    src, _ = default_class_split(BYCLASS)
    s = source_split(tagged, src, per_class=80, heldout_per_class=30)
    assert len(s.train) == 80 * 20 and len(s.test) == 30 * 20 and s.classes == src
    assert not set(_ids(s.train)) & set(_ids(s.test))
    assert (tagged.labels[_ids(s.train)] == np.array([BYCLASS.index(c) for c in src])[s.train.labels]).all()
    with pytest.raises(DataError, match=r"class '.' has 120 samples, need 400 \+ 100 held out"):
        source_split(tagged, src)


def test_transfer_split(tagged):
    src, tgt = default_class_split(BYCLASS)
    a = transfer_split(tagged, tgt, k=5, trial=0)
    assert len(a.train) == 5 * 20 and len(a.test) == 1000 and a.test.counts() == {c: 50 for c in tgt}
    assert not set(_ids(a.train)) & set(_ids(a.test))
    b = transfer_split(tagged, tgt, k=5, trial=1)
    k10 = transfer_split(tagged, tgt, k=10, trial=0)
    assert set(_ids(a.train)) != set(_ids(b.train))  # trials draw different samples
    for other in (b, k10):  # ... but are scored on the same test set
        np.testing.assert_array_equal(_ids(a.test), _ids(other.test))
    np.testing.assert_array_equal(_ids(a.train), _ids(transfer_split(tagged, tgt, k=5, trial=0).train))
    with pytest.raises(DataError, match="overlap the source classes"):
        transfer_split(tagged, tgt, k=5, source_classes=[tgt[3], "?"])
    with pytest.raises(DataError, match="too few for 50 test \\+ 20 validation \\+ k=51"):
        transfer_split(tagged, tgt, k=51)
    with pytest.raises(DataError, match="at least 1"):
        transfer_split(tagged, tgt, k=0)


def test_validation_sets_never_overlap_test_or_training_sets(tagged):
    """The validation samples (what recipes are chosen on) are disjoint from the test set and from
    every k's training samples of their trial, at the largest k the pool allows too."""
    _, tgt = default_class_split(BYCLASS)
    plain = transfer_split(tagged, tgt, k=5, trial=2, val_per_class=0)
    assert plain.val is None
    for trial in range(3):
        splits = [transfer_split(tagged, tgt, k=k, trial=trial) for k in (1, 5, 10, 40, 50)]
        val = set(_ids(splits[0].val))
        assert len(val) == 20 * 20 and splits[0].val.counts() == {c: 20 for c in tgt}
        for s in splits:
            np.testing.assert_array_equal(_ids(s.val), _ids(splits[0].val))  # the same for every k
            assert not val & set(_ids(s.test)) and not val & set(_ids(s.train))
            assert (tagged.labels[_ids(s.val)] == np.array([BYCLASS.index(c) for c in tgt])[s.val.labels]).all()
    # adding the validation set leaves the training draws as they were
    np.testing.assert_array_equal(_ids(plain.train), _ids(transfer_split(tagged, tgt, k=5, trial=2).train))


def test_check_classes(tagged):
    for chars, msg in ((["A", "?"], "not in tagged"), (["A", "A"], "listed twice"), (["A"], "at least 2")):
        with pytest.raises(DataError, match=msg):
            check_classes(tagged, chars, "target classes")


def test_real_transfer_split(real):
    src, tgt = default_class_split(real, seed=0)
    s = transfer_split(real, tgt, k=PAPER["source_per_class"] // 20, source_classes=src)
    assert len(s.test) == 1000 and len(s.train) == 400
