"""The classroom server: what browsers may open, training in niced worker processes, jobs that
survive a restart."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from lenet.data import DataError
from lenet.data.base import BYCLASS
from lenet.data.idx import write_idx
from lenet.data.roots import allowed_path, data_roots, store_upload


def release(folder, n=6):
    folder.mkdir(parents=True, exist_ok=True)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 2:26, 5] = 255
    write_idx(folder / "emnist-byclass-test-images-idx3-ubyte.gz", images)
    write_idx(folder / "emnist-byclass-test-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8))
    (folder / "emnist-byclass-mapping.txt").write_text("".join(f"{i} {ord(c)}\n" for i, c in enumerate(BYCLASS)))
    return folder


def zipped(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in folder.iterdir():
            z.write(f, f"gzip/{f.name}")
    return buf.getvalue()


# --- paths a browser may open ---------------------------------------------------------------------

def test_only_paths_inside_the_data_folders_resolve(tmp_path, monkeypatch):
    root, outside = tmp_path / "data", tmp_path / "private"
    release(root / "emnist")
    outside.mkdir()
    (outside / "notes.txt").write_text("x")
    (root / "link").symlink_to(outside)
    monkeypatch.setenv("LENET_DATA_DIRS", f"{tmp_path / 'nothing'}:{root}")
    assert data_roots() == [tmp_path / "nothing", root]
    assert allowed_path(root / "emnist") == root / "emnist"
    assert allowed_path("emnist") == root / "emnist"              # relative: inside a root
    assert allowed_path(f"{root}/emnist/../emnist") == root / "emnist"
    messages = set()
    for probe in (outside, outside / "notes.txt", "/etc/passwd", "/no/such/thing", root / "link",
                  root / "link" / "notes.txt", "../private", f"{root}/../private", "", "a\x00b"):
        with pytest.raises(DataError) as e:
            allowed_path(probe)
        messages.add(str(e.value))
    assert len(messages) == 1, messages  # the same words whatever is (or is not) there
    assert "private" not in messages.pop()
    monkeypatch.delenv("LENET_DATA_DIRS")
    assert [p.name for p in data_roots()] == ["emnist", "emnist"]  # the project's own EMNIST folders


def test_an_uploaded_archive_is_capped_checked_and_kept(tmp_path):
    good = zipped(release(tmp_path / "src"))
    kept = store_upload(good, "gzip.zip", tmp_path / "up")
    assert kept.parent == tmp_path / "up" and kept.read_bytes() == good
    assert store_upload(good, "again.zip", tmp_path / "up") == kept  # the same archive is kept once
    with pytest.raises(DataError, match="big.zip: 1 MB is over the 0 MB upload limit"):
        store_upload(b"PK" + bytes(1 << 20), "big.zip", tmp_path / "up2", max_mb=0)
    with pytest.raises(DataError, match="notes.zip: not a zip archive"):
        store_upload(b"hello", "notes.zip", tmp_path / "up2")
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../emnist-byclass-test-labels-idx1-ubyte.gz", b"x")
    with pytest.raises(DataError, match="evil.zip: .*unsafe member name"):
        store_upload(evil.getvalue(), "evil.zip", tmp_path / "up2")
    assert not (tmp_path / "up2").exists() or not list((tmp_path / "up2").iterdir())  # nothing left behind
