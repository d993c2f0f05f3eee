"""The classroom server: what browsers may open, training in niced worker processes, jobs that
survive a restart."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lenet.data import DataError
from lenet.data.base import BYCLASS
from lenet.data.idx import write_idx
from lenet.data.roots import allowed_path, data_roots, store_upload

ROOT = Path(__file__).resolve().parents[1]


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


# --- training in worker processes ------------------------------------------------------------------

def probe(job, fail: str = ""):
    """A job target: where and how nicely it runs, and how it fails."""
    from lenet.train import TrainingError
    job.record(pid=os.getpid(), nice=os.getpriority(os.PRIO_PROCESS, 0))
    if fail == "raise":
        raise TrainingError("the training loss became nan at epoch 3")
    if fail == "die":
        os._exit(3)
    return "ok"


@pytest.fixture(scope="module")
def long_transfer():
    """A source net and a transfer that trains for minutes unless stopped."""
    from lenet import checkpoint
    from lenet.config import TRANSFER_RECIPE
    from lenet.data import load
    from lenet.data.protocol import transfer_split
    net = checkpoint.load(ROOT / "assets" / "source-synthetic")
    ds = load("synthetic")
    chars = [c for c in ds.classes if c not in net.classes][:20]
    return net, transfer_split(ds, chars, 40, 0, 0, source_classes=net.classes), \
        TRANSFER_RECIPE.replace(max_epochs=1000)


def test_jobs_train_in_a_niced_worker_process_and_keep_their_stopped_net(long_transfer):
    import resource
    import time
    from lenet.jobs import STOPPED, TRAINING_NICE, JobPool, in_worker
    from lenet.net import Net
    from lenet.tasks import transfer_task

    pool = JobPool(workers=2)
    job = pool.submit(in_worker(probe), "probe", "s1")
    assert job.wait(60)
    rec = job.snapshot().records[0]
    assert rec["pid"] != os.getpid() and rec["nice"] >= TRAINING_NICE
    assert job.snapshot().result == "ok"

    net, split, recipe = long_transfer
    job = pool.submit(in_worker(transfer_task, net, split, 0, recipe), "n=0 k=40", "s1")
    end = time.monotonic() + 60
    while not [r for r in job.snapshot().records if r.get("kind") == "step"]:
        assert time.monotonic() < end and not job.done_event.is_set(), job.snapshot().error
        time.sleep(0.05)
    cpu0, t0, steps0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), len(job.snapshot().records)
    time.sleep(2.0)
    cpu1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    server_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    assert len(job.snapshot().records) > steps0, "the live curve keeps growing"
    print(f"server process CPU while a job trains: {server_cpu / (t1 - t0):.1%} of one core")
    assert server_cpu < 0.25 * (t1 - t0), "training holds no CPU (nor GIL) of the server process"
    t = time.monotonic()
    job.stop()
    assert job.wait(1.0), "Stop takes effect within a second"
    print(f"stop -> stopped in {(time.monotonic() - t) * 1000:.0f} ms")
    while job.snapshot().result is None and time.monotonic() < t + 30:  # a busy niced worker may lag
        time.sleep(0.1)
    snap = job.snapshot()
    assert snap.state == STOPPED and isinstance(snap.result, Net), "a stopped run keeps its net"
    assert snap.result.classes == split.classes and snap.result.retained == 0


def test_worker_failures_end_the_job_failed_with_their_reason():
    from lenet.jobs import FAILED, JobPool, in_worker
    pool = JobPool(workers=2)
    a, b = pool.submit(in_worker(probe, "raise"), "nan", "s1"), pool.submit(in_worker(probe, "die"), "dies", "s1")
    assert a.wait(60) and b.wait(60)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa.state == FAILED and sa.error == "TrainingError: the training loss became nan at epoch 3"
    assert sb.state == FAILED and "ended unexpectedly (exit code 3)" in sb.error
