"""The EMNIST subset that ships in assets/emnist-subset: its files, size and provenance, the command
that makes it, and a fresh clone (no ../shared, an empty cache) reading it wherever EMNIST is asked
for: `data info`, `--data emnist`, the app's Home and Source pages, the Download button."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lenet.core import checkpoint
from lenet import cli
from lenet.config import PAPER_SAMPLES
from lenet.data import DataError, active_set, find_emnist, load
from lenet.data.base import BYCLASS
from lenet.data.idx import read_idx
from lenet.data.protocol import PAPER, VAL_PER_CLASS, default_class_split, source_split, transfer_split
from lenet.data.subset import SUBSET_DIR, make_subset
from lenet.grid.experiment import check_targets
from test_download import server  # noqa: F401  (the local HTTP server fixture)
from appsession import open_app

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LENET_DATA_DIR") or ROOT.parent / "shared" / "data" / "emnist")
IMAGES, LABELS = "emnist-byclass-test-images-idx3-ubyte.gz", "emnist-byclass-test-labels-idx1-ubyte.gz"
MAPPING, PROVENANCE = "emnist-byclass-mapping.txt", "subset.json"
needs_shared = pytest.mark.skipif(not (SHARED / IMAGES).is_file(), reason=f"full EMNIST not found at {SHARED}")


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """What a fresh clone sees: no full EMNIST anywhere, an empty cache, no app overrides."""
    monkeypatch.setenv("LENET_DATA_DIR", str(tmp_path / "no-emnist"))
    monkeypatch.setenv("LENET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LENET_HOME", str(tmp_path / "home"))
    for name in ("LENET_DATA", "LENET_SOURCE", "LENET_EMNIST_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def subset():
    return load("emnist", SUBSET_DIR)


def test_the_shipped_files_their_format_size_and_hashes():
    prov = json.loads((SUBSET_DIR / PROVENANCE).read_text())
    assert sorted(p.name for p in SUBSET_DIR.iterdir()) == sorted([IMAGES, LABELS, MAPPING, PROVENANCE])
    for name, digest in prov["files"].items():
        assert hashlib.sha256((SUBSET_DIR / name).read_bytes()).hexdigest() == digest, name
    for name in (IMAGES, LABELS):
        assert (SUBSET_DIR / name).read_bytes()[:2] == b"\x1f\x8b"  # gzip, like the official release
        gzip.decompress((SUBSET_DIR / name).read_bytes())  # and a whole one
    images, labels = read_idx(SUBSET_DIR / IMAGES, 3), read_idx(SUBSET_DIR / LABELS, 1)
    assert images.shape == (prov["n"], 28, 28) and labels.shape == (prov["n"],)
    counts = np.bincount(labels, minlength=62)
    assert {str(i): int(k) for i, k in enumerate(counts) if k} == prov["counts_by_label"]
    assert counts.max() == prov["per_class"] == 500 and (counts > 0).all()
    assert prov["made_from"][IMAGES]["items"] == 116_323 and prov["seed"] == 0
    # the before-stop hook's check: tracked EMNIST-like files stay under 10 MB in all
    assert sum((SUBSET_DIR / n).stat().st_size for n in prov["files"]) < 8e6
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return
    assert {f"assets/emnist-subset/{n}" for n in prov["files"]} <= set(tracked.splitlines())  # a clone gets it
    emnist = [ROOT / f for f in tracked.splitlines() if re.search(r"idx[13]-ubyte|emnist", f) and (ROOT / f).exists()]
    assert sum(f.stat().st_size for f in emnist) < 10 * 2**20


def test_the_subset_holds_the_papers_protocol(subset):
    """Source characters need 400 + 100, target characters k_max + validation + 50 test samples."""
    assert subset.classes == BYCLASS and subset.source == "emnist-byclass-test-subset"
    assert "the shipped subset" in subset.description and "29,634" in subset.description
    counts = subset.counts()
    assert min(counts.values()) >= max(PAPER_SAMPLES) + VAL_PER_CLASS + PAPER["test_per_class"]
    net = checkpoint.load(ROOT / "assets" / "source-emnist")
    src, tgt = default_class_split(subset, seed=0)
    assert src == net.classes  # the shipped net's characters, 500 of each here
    assert all(counts[c] == 500 for c in src)
    assert len(source_split(subset, src).train) == 20 * 400
    check_targets(subset, tgt, net.classes, max(PAPER_SAMPLES))
    assert len(transfer_split(subset, tgt, k=40, source_classes=src).test) == 1000
    # upright, like the release once loaded: an 'L' has ink down the left and along the bottom
    m = subset.images[subset.labels == subset.classes.index("L")].mean(0)
    assert m[4:14, 4:12].mean() > 2 * m[4:14, 16:24].mean() and m[21:25, 14:24].mean() > 2 * m[4:14, 16:24].mean()


def test_a_fresh_clone_uses_the_subset(fresh, capsys):
    assert find_emnist() == SUBSET_DIR and find_emnist(full_only=True) is None
    assert active_set("emnist") == ("EMNIST subset (shipped)", SUBSET_DIR)
    assert load("emnist").source == "emnist-byclass-test-subset"
    assert cli.main(["data", "info", "--data", "emnist", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["active"] == "EMNIST subset (shipped)" and info["n"] == 29_634 and info["counts"]["j"] == 317
    assert cli.main(["data", "info", "--data", "emnist"]) == 0
    assert capsys.readouterr().out.startswith(f"active: EMNIST subset (shipped) at {SUBSET_DIR}\n")
    from lenet.files import ASSETS
    from ui.session import default_setup
    assert default_setup() == ("emnist", None, ASSETS / "source-emnist")


@needs_shared
def test_the_full_set_wins_when_it_is_there(fresh, monkeypatch):
    monkeypatch.setenv("LENET_DATA_DIR", str(SHARED))
    assert active_set("emnist") == ("full EMNIST", SHARED)
    assert len(load("emnist")) == 116_323


@needs_shared
def test_the_subset_command_reproduces_the_shipped_files(tmp_path, capsys):
    assert cli.main(["data", "subset", "--data-dir", str(SHARED), "--out", str(tmp_path / "s"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] < 8e6
    for name in (IMAGES, LABELS, MAPPING, PROVENANCE):
        assert (tmp_path / "s" / name).read_bytes() == (SUBSET_DIR / name).read_bytes(), name
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".")]  # no temporary left


@needs_shared
def test_the_shipped_net_reads_subset_characters_it_never_saw(subset):
    """assets/source-emnist was trained on the full test split; the subset's characters of its
    classes that were not in its training draw are read about as well as its own held-out ones."""
    full = load("emnist", SHARED)
    net = checkpoint.load(ROOT / "assets" / "source-emnist")
    drawn = source_split(full, net.classes, 400, 0, seed=0).train  # its training draw, by image
    seen = {im.tobytes() for im in drawn.images}
    rows = np.flatnonzero(np.isin(subset.labels, [subset.classes.index(c) for c in net.classes]))
    unseen = [r for r in rows if subset.images[r].tobytes() not in seen]
    assert len(rows) - len(unseen) < 0.4 * len(rows)  # a third of them were in its draw
    pred = net.predict(subset.images[unseen])
    acc = np.mean([p == subset.classes[subset.labels[r]] for p, r in zip(pred, unseen)])
    assert acc > 0.86  # 0.888 on 6,752 characters; 0.890 on its own 2,000 held out (issue #22: drawn copies)


def test_subset_errors_are_specific(fresh, tmp_path):
    with pytest.raises(DataError, match="is itself a subset"):
        make_subset(SUBSET_DIR, tmp_path / "x")
    with pytest.raises(DataError, match="no full EMNIST release found"):
        make_subset(None, tmp_path / "x")
    with pytest.raises(DataError, match="at least 1, got 0"):
        make_subset(SUBSET_DIR, tmp_path / "x", per_class=0)
    assert not (tmp_path / "x").exists()


# --- the app on a fresh clone --------------------------------------------------------------------

def _app(path: str | None = None) -> AppTest:
    return open_app(path)


def _texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def test_home_and_source_pages_say_the_subset_is_active(fresh):
    at = _app()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dataset"] == "EMNIST subset (shipped)" and metrics["Source net"] == "20 characters"
    assert "shipped: source-emnist" in _texts(at.caption)
    at.switch_page("app_pages/source.py").run()
    assert not at.exception
    assert "Active: **EMNIST subset (shipped)**" in _texts(at.caption)
    assert "29,634 characters" in _texts(at.caption) and "not on this machine" in _texts(at.caption)
    assert at.radio(key="src-kind").value == "emnist"


def test_download_button_fetches_full_emnist_with_a_progress_bar(fresh, server, monkeypatch):
    monkeypatch.setenv("LENET_EMNIST_URL", server["url"])
    at = _app("app_pages/source.py")
    next(b for b in at.button if b.label == "Download full EMNIST").click().run()
    assert not at.error, _texts(at.error)
    assert "Downloaded full EMNIST" in _texts(at.success)
    bar = at.get("progress")[0].proto
    assert bar.value == 100 and "MB" in bar.text
    assert (fresh / "cache" / "emnist" / "gzip.zip").read_bytes() == server["body"]
    at.run()  # the next run reads the download: the tiny release of 30 characters
    assert "Active: **full EMNIST**" in _texts(at.caption) and "30 characters" in _texts(at.caption)
    assert not any(b.label == "Download full EMNIST" for b in at.button)


def test_download_button_offline_says_so_and_keeps_the_subset(fresh, monkeypatch):
    monkeypatch.setenv("LENET_EMNIST_URL", "http://127.0.0.1:9/gzip.zip")  # nothing listens there
    at = _app("app_pages/source.py")
    next(b for b in at.button if b.label == "Download full EMNIST").click().run()
    error = _texts(at.error)
    assert "Could not download EMNIST: download of http://127.0.0.1:9/gzip.zip failed" in error
    assert "the active dataset is still EMNIST subset (shipped)" in error and not at.success and not at.get("progress")
    at.run()
    assert "Active: **EMNIST subset (shipped)**" in _texts(at.caption)


def test_a_student_cannot_download_full_emnist_to_the_server(fresh, server, monkeypatch):
    """With a teacher password, the download (which changes the data set for every session) is the
    teacher's: a student's click is refused and nothing is fetched."""
    monkeypatch.setenv("LENET_EMNIST_URL", server["url"])
    monkeypatch.setenv("LENET_TEACHER_PASSWORD", "a-long-teacher-secret")
    at = _app("app_pages/source.py")
    next(b for b in at.button if b.label == "Download full EMNIST").click().run()
    assert "Only the teacher can download full EMNIST to the server." in _texts(at.error)
    assert not at.success and not at.get("progress")
    assert not (fresh / "cache" / "emnist" / "gzip.zip").exists()


def test_every_page_works_on_the_subset(fresh):
    at = _app()
    for page in ("source", "transfer", "experiments", "maps", "draw", "teach"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, _texts(at.error))
    at.switch_page("app_pages/transfer.py").run()
    chars = at.multiselect(key="tr-chars").value
    assert len(chars) == 20 and not set(chars) & set(checkpoint.load(ROOT / "assets" / "source-emnist").classes)
