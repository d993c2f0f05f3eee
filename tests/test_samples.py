"""The Teach page's sample store: persistence, unicode names, safe zip import."""
import functools
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lenet.data import DataError
from lenet.drawing.store import SampleStore, char_of_folder, folder_name


def glyph(seed: int) -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    rng = np.random.default_rng(seed)
    y, x = rng.integers(4, 16, 2)
    img[y:y + 10, x:x + 8] = 255
    return img


def listing(root: Path) -> dict:
    """Every file below root (hidden ones too) with its bytes: 'nothing was written' means equal."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def store(tmp_path):
    s = SampleStore(tmp_path / "samples")
    for i, ch in enumerate(["α", "☺", "A", "😀"]):
        s.add(ch, glyph(i))
        s.add(ch, glyph(i + 10))
    return s


def test_add_list_delete_persist(store):
    again = SampleStore(store.root)  # a new page run on the same folder
    assert again.characters() == sorted(["α", "☺", "A", "😀"])
    got = again.samples("α")
    assert len(got) == 2 and again.count("α") == 2
    assert np.array_equal(got[0][1], glyph(0)) and np.array_equal(got[1][1], glyph(10))
    assert again.delete("α", got[0][0]) and not again.delete("α", got[0][0])
    assert [i for i, _ in SampleStore(store.root).samples("α")] == [got[1][0]]
    again.remove_character("☺")
    assert "☺" not in SampleStore(store.root).characters()
    charset = SampleStore(store.root).to_charset()
    assert charset.source == "drawn" and sorted(charset.classes) == sorted(["α", "A", "😀"])
    assert charset.images.shape == (5, 28, 28) and np.bincount(charset.labels).tolist() == [2, 1, 2]


@pytest.mark.parametrize("name", ["α", "☺", "😀", "A", "a", "ab", "..", "/", "\\", "C:", "é"])
def test_names_map_to_safe_reversible_folders(name):
    folder = folder_name(name)
    assert "/" not in folder and "\\" not in folder and ".." not in folder
    assert char_of_folder(folder) == name
    assert folder_name("A") != folder_name("a")  # case-insensitive file systems keep them apart


@pytest.mark.parametrize("bad", ["", "   ", "123456789", "a\x00", 5])
def test_bad_names_and_images_are_refused(tmp_path, bad):
    s = SampleStore(tmp_path)
    with pytest.raises(DataError):
        s.add(bad, glyph(0))
    with pytest.raises(DataError, match="28, 28"):
        s.add("A", np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match="28, 28"):
        s.add("A", glyph(0).astype(np.float32))
    with pytest.raises(DataError, match="sample id"):
        s.delete("A", "../../etc/passwd")
    assert listing(tmp_path) == {}


def test_corrupt_and_half_written_files_are_skipped(store):
    folder = store.root / folder_name("A")
    good = sorted(folder.glob("*.png"))
    good[0].write_bytes(good[0].read_bytes()[:30])  # truncated by a crash
    (folder / ".0123456789abcdef01.png.1234.tmp").write_bytes(b"\x89PNG half")  # interrupted save
    fresh = SampleStore(store.root)
    got = fresh.samples("A")
    assert len(got) == 1 and np.array_equal(got[0][1], glyph(12))
    assert len(fresh.problems) == 1 and good[0].name in fresh.problems[0]
    assert fresh.to_charset().counts()["A"] == 1


def test_interrupted_save_leaves_no_png(store, monkeypatch):
    before = listing(store.root)

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.add("A", glyph(5))
    monkeypatch.undo()
    assert listing(store.root) == before


def test_export_import_round_trip(store, tmp_path):
    data = store.export_zip()
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("manifest.json"))
    assert manifest["characters"][folder_name("😀")] == "😀"
    other = SampleStore(tmp_path / "other")
    other.add("A", glyph(99))
    assert other.import_zip(data) == {c: 2 for c in store.characters()}
    assert other.count("A") == 3 and other.count("α") == 2
    a = store.to_charset()
    b = SampleStore(tmp_path / "fresh")
    b.import_zip(data)
    b = b.to_charset()
    assert a.classes == b.classes and np.array_equal(a.images, b.images)


def make_zip(members: dict, symlinks=()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, data)
    return buf.getvalue()


def png(img):
    from lenet.drawing.store import encode_png
    return encode_png(img)


def zip_bomb() -> bytes:
    """One member of 200 MB of zeros, a few hundred kB on disk."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("U+0041/0000000000000000aa.png", "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(200):
                f.write(block)
    return buf.getvalue()


@pytest.mark.parametrize("data, words", [
    (b"not a zip at all", "not a zip"),
    (make_zip({"../evil.png": png(glyph(0))}), r"\.\."),
    (make_zip({"U+0041/../../evil.png": png(glyph(0))}), r"\.\."),
    (make_zip({"/etc/evil.png": png(glyph(0))}), "absolute"),
    (make_zip({"C:/evil.png": png(glyph(0))}), "absolute"),
    (make_zip({"U+0041\\..\\evil.png": png(glyph(0))}), "backslash"),
    (make_zip({"U+0041/0000000000000000aa.png": b"/etc/passwd"}, symlinks=["U+0041/0000000000000000aa.png"]),
     "symbolic link"),
    (make_zip({"U+0041/a.png": b"MZ this is an exe"}), "not a PNG"),
    (make_zip({"U+0041/a.png": png(glyph(0))[:40]}), "unreadable"),
    (make_zip({"U+0041/a.txt": b"hello"}), "expected"),
    (make_zip({"evil/a.png": png(glyph(0))}), "not a character folder"),
    (make_zip({"U+0041/a.png": png(glyph(0)), "manifest.json": b"{nope"}), "JSON"),
    (make_zip({"U+0041/a.png": png(glyph(0)),
               "manifest.json": json.dumps({"characters": {"U+0041": "B"}})}), "U\\+0042"),
    (make_zip({"U+0041/a.png": png(glyph(0)), "manifest.json": json.dumps({"characters": {}})}),
     "not listed"),
    (make_zip({}), "no sample"),
])
def test_bad_zips_are_refused_and_nothing_is_written(store, data, words):
    before = listing(store.root.parent)
    with pytest.raises(DataError, match=words):
        store.import_zip(data)
    assert listing(store.root.parent) == before


def test_zip_bomb_is_refused_from_its_declared_size(store):
    data = zip_bomb()
    assert len(data) < 2 << 20
    before = listing(store.root.parent)
    with pytest.raises(DataError, match="zip bomb"):
        store.import_zip(data)
    with pytest.raises(DataError, match="members"):
        store.import_zip(make_zip({f"U+0041/{i:018x}.png": png(glyph(i)) for i in range(12)}), max_files=10)
    assert listing(store.root.parent) == before


def test_foreign_pngs_are_framed_to_28x28(store, tmp_path):
    from PIL import Image, ImageDraw
    im = Image.new("L", (120, 90), 255)  # dark ink on white paper, not 28x28
    ImageDraw.Draw(im).line([(20, 10), (60, 80)], fill=0, width=6)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    s = SampleStore(tmp_path / "t")
    s.import_zip(make_zip({"U+0031/x.png": buf.getvalue()}))
    (_, img), = s.samples("1")
    assert img.shape == (28, 28) and img.max() == 255 and img[0].max() < 64  # ink high, framed


@functools.cache
def _exported(root: str) -> bytes:
    return SampleStore(root).export_zip()


def _valid_zip(store) -> bytes:
    return _exported(str(store.root))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_fuzzed_imports_fail_cleanly_and_stay_inside_root(store, data):
    valid = _valid_zip(store)
    if data.draw(st.booleans()):
        blob = data.draw(st.binary(max_size=2000))
    else:
        blob = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    outside = store.root.parent
    before = {p for p in outside.rglob("*") if not p.is_relative_to(store.root)}
    snapshot = listing(store.root)
    try:
        store.import_zip(blob)
    except DataError:
        assert listing(store.root) == snapshot  # a refused zip writes nothing
    assert {p for p in outside.rglob("*") if not p.is_relative_to(store.root)} == before
