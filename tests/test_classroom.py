"""The classroom server: what browsers may open, training in niced worker processes, jobs that
survive a restart."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lenet.config import TRANSFER_RECIPE
from lenet.data import DataError
from lenet.data.base import BYCLASS
from lenet.data.idx import write_idx
from lenet.data.roots import allowed_path, data_roots, store_upload

ROOT = Path(__file__).resolve().parents[1]
ENDLESS = TRANSFER_RECIPE.replace(max_epochs=100_000, max_steps=0, target_train_loss=0.0)  # only stop ends it


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
    from lenet.data.emnist import default_dirs
    assert data_roots() == [Path(os.path.realpath(d)) for d in default_dirs()]  # where the project finds EMNIST


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
    from lenet.core.train import TrainingError
    job.record(pid=os.getpid(), nice=os.getpriority(os.PRIO_PROCESS, 0))
    if fail == "raise":
        raise TrainingError("the training loss became nan at epoch 3")
    if fail == "die":
        os._exit(3)
    return "ok"


@pytest.fixture(scope="module")
def long_transfer():
    """A source net and a transfer that trains for minutes unless stopped."""
    from lenet.core import checkpoint
    from lenet.data import load
    from lenet.data.protocol import transfer_split
    net = checkpoint.load(ROOT / "assets" / "source-synthetic")
    ds = load("synthetic")
    chars = [c for c in ds.classes if c not in net.classes][:20]
    return net, transfer_split(ds, chars, 40, 0, 0, source_classes=net.classes), \
        ENDLESS


def test_jobs_train_in_a_niced_worker_process_and_keep_their_stopped_net(long_transfer):
    import resource
    import time
    from lenet.procs import TRAINING_NICE
    from lenet.runtime.jobs import STOPPED, JobPool
    from lenet.runtime.worker import in_worker
    from lenet.core.net import Net
    from lenet.runtime.tasks import transfer_task

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
    from lenet.runtime.jobs import FAILED, JobPool
    from lenet.runtime.worker import in_worker
    pool = JobPool(workers=2)
    a, b = pool.submit(in_worker(probe, "raise"), "nan", "s1"), pool.submit(in_worker(probe, "die"), "dies", "s1")
    assert a.wait(60) and b.wait(60)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa.state == FAILED and sa.error == "TrainingError: the training loss became nan at epoch 3"
    assert sb.state == FAILED and "ended unexpectedly (exit code 3)" in sb.error


# --- restarts lose nothing ----------------------------------------------------------------------------

SERVER = """
import sys, time
from streamlit.testing.v1 import AppTest
if __name__ == "__main__":
    at = AppTest.from_file(sys.argv[1], default_timeout=120)
    at.query_params["sid"] = sys.argv[2]
    at.run()
    if sys.argv[3] == "grid":
        at.switch_page("app_pages/experiments.py")
        at.run()
        at.multiselect(key="ex-levels").set_value([4, 5])
        at.multiselect(key="ex-k").set_value([1, 5])
        at.number_input(key="ex-trials").set_value(3)
        at.number_input(key="ex-steps").set_value(400).run()
        next(b for b in at.button if b.label == "Run the grid").click().run()
    else:
        at.switch_page("app_pages/studies.py")
        at.run()
        at.selectbox(key="st-name").set_value("finetune").run()
        next(b for b in at.button if b.label == "Run the study").click().run()
    print("started", flush=True)
    while True:  # a browser polling the page until the server is killed
        time.sleep(0.5)
        at.run()
"""


def _rows(path):
    import csv
    return list(csv.DictReader(path.open())) if path.exists() else []


def _kill_server_during(tmp_path, monkeypatch, what: str, results: str, min_rows: int):
    """A server (AppTest in a subprocess) starts a grid or a study and is SIGKILLed once its runs.csv
    (home/results/sid/*/runs.csv) holds min_rows runs; (home, sid, runs.csv, the rows before the kill)."""
    import signal
    import subprocess
    import sys
    import time
    import uuid

    home, sid = tmp_path / "home", uuid.uuid4().hex
    env = {"LENET_HOME": str(home), "LENET_DATA": "synthetic", "LENET_SOURCE": str(ROOT / "assets" / "source-synthetic"),
           "LENET_WORKERS": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "server.py").write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), str(ROOT / "app.py"), sid, what],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        end, runs = time.monotonic() + 240, None
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < end, "no run finished in time"
            found = list((home / results / sid).glob("*/runs.csv"))
            if found and len(_rows(found[0])) >= min_rows:
                runs = found[0]
                break
            time.sleep(0.2)
        before = _rows(runs)
        server.send_signal(signal.SIGKILL)  # no chance to clean up
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
    _wait_unlocked(runs.parent)
    return home, sid, runs, before


def _wait_unlocked(folder, timeout=30.0):
    """Until the killed server's worker notices and lets go of the folder's lock."""
    import fcntl
    import time
    with (folder / ".reproduce.lock").open("w") as f:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except OSError:
                assert time.monotonic() < end, "the killed server's worker is still running"
                time.sleep(0.2)


def _resume_after_restart(sid: str, page: str, timeout: float = 300):
    """A fresh server process (no pool, no sessions in memory): the owner's page shows the job
    interrupted; Resume runs it to Done. The AppTest, for more checks."""
    import time

    from appsession import open_app

    import ui
    ui.pool.clear()
    ui.sessions.clear()
    at = open_app(page, sid)
    assert "Interrupted" in " ".join(w.value for w in at.warning)
    next(b for b in at.button if b.label == "Resume").click().run()
    end = time.monotonic() + timeout
    while "Done" not in " ".join(str(s.value) for s in at.success):
        assert time.monotonic() < end, "the resumed job did not finish"
        assert not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
        at.run()
    return at


def test_a_server_killed_during_a_grid_resumes_it_after_a_restart(tmp_path, monkeypatch):
    home, sid, runs, before = _kill_server_during(tmp_path, monkeypatch, "grid", "experiments", 2)
    assert len(before) < 12, "killed during the grid, not after it"
    job_files = list((home / "jobs").glob("*/job.json"))
    assert len(job_files) == 1 and '"state": "running"' in job_files[0].read_text()
    at = _resume_after_restart(sid, "app_pages/experiments.py", timeout=240)
    after = _rows(runs)
    assert len(after) == 12
    assert after[:len(before)] == before, "every run finished before the kill is kept, unchanged"
    assert not any(b.label == "Resume" for b in at.button)
    import ui
    ui.pool.clear()
    ui.sessions.clear()


def test_a_server_killed_during_a_study_resumes_it_after_a_restart(tmp_path, monkeypatch):
    """A study is a job like a grid: kept on disk, shown interrupted after a crash, resumed from its runs."""
    from lenet.studies import finetune
    quick = finetune.Settings.quick()
    total = len(quick.levels) * len(quick.samples) * len(quick.lr_mults) * quick.trials
    home, sid, runs, before = _kill_server_during(tmp_path, monkeypatch, "study", "studies", 1)
    assert len(before) < total, "killed during the study, not after it"
    (job_file,) = list((home / "jobs").glob("*/job.json"))
    assert '"state": "running"' in job_file.read_text() and '"task": "study"' in job_file.read_text()
    _resume_after_restart(sid, "app_pages/studies.py")
    after = _rows(runs)
    assert len(after) == total
    assert after[:len(before)] == before, "every run finished before the kill is kept, unchanged"
    assert (runs.parent / "report.html").exists()
    import ui
    ui.pool.clear()
    ui.sessions.clear()


def test_finished_and_stopped_runs_keep_their_net_and_curves_across_a_restart(tmp_path, long_transfer):
    import time

    import torch

    from lenet.config import TRANSFER_RECIPE
    from lenet.runtime.jobs import DONE, INTERRUPTED, STOPPED, JobPool
    from lenet.runtime.worker import in_worker
    from lenet.runtime.store import JobStore
    from lenet.runtime.tasks import transfer_task

    net, split, _ = long_transfer
    pool = JobPool(workers=1, store=JobStore(tmp_path / "jobs"))
    spec = {"task": "transfer", "n": 4}
    done = pool.submit(in_worker(transfer_task, net, split, 4, TRANSFER_RECIPE.replace(max_epochs=2)), "short", "s1",
                       meta={"kind": "transfer", "label": "short"}, spec=spec, nets={"source": net},
                       splits={"split": split})
    assert done.wait(120) and done.snapshot().state == DONE
    long = pool.submit(in_worker(transfer_task, net, split, 0, ENDLESS), "long",
                       "s1", spec=spec, nets={"source": net}, splits={"split": split})
    queued = pool.submit(in_worker(transfer_task, net, split, 0, TRANSFER_RECIPE), "q", "s2", spec=spec)
    end = time.monotonic() + 60
    while not long.snapshot().records:
        assert time.monotonic() < end
        time.sleep(0.05)
    assert queued.snapshot().state == "queued"  # it waits for the one worker
    during = {j.id: j.snapshot().state for j in JobPool(store=JobStore(tmp_path / "jobs")).jobs()}
    assert during == {done.id: DONE, long.id: INTERRUPTED, queued.id: INTERRUPTED}, "as after a restart now"
    long.stop()
    queued.stop()
    assert long.wait(1.0)
    end = time.monotonic() + 60  # a niced worker on a busy machine may hand its net over late
    while not (pool.store.read(long.id) or {}).get("has_result") and time.monotonic() < end:
        time.sleep(0.1)
    assert long.snapshot().result is not None, "the stopped run handed over its net"

    again = JobPool(workers=2, store=JobStore(tmp_path / "jobs"))  # as after a restart
    by_id = {j.id: j for j in again.jobs()}
    d, s = by_id[done.id].snapshot(), by_id[long.id].snapshot()
    assert d.state == DONE and s.state == STOPPED and by_id[queued.id].snapshot().state == STOPPED
    assert by_id[done.id].meta == {"kind": "transfer", "label": "short"} and by_id[done.id].owner == "s1"
    assert d.records == done.snapshot().records and d.records, "the curves are kept"
    for old, new in ((done, d), (long, s)):
        a, b = old.snapshot().result.model.state_dict(), new.result.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), "the net is kept bit for bit"
    assert again.store.split(long.id, "split").train.images.tobytes() == split.train.images.tobytes()
    assert again.submit(lambda job: 1, "next").id > queued.id, "ids go on after a restart"


STOPPING_SERVER = """
import signal, sys, time
from lenet.core import checkpoint
from lenet.config import TRANSFER_RECIPE
import numpy as np
from lenet.data import CharacterSet
from lenet.data.protocol import Split
from lenet.runtime.jobs import JobPool
from lenet.runtime.worker import in_worker
from lenet.runtime.store import JobStore
from lenet.runtime.tasks import transfer_task
ENDLESS = TRANSFER_RECIPE.replace(max_epochs=100_000, max_steps=0, target_train_loss=0.0)  # only stop ends it
if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # as Streamlit does: a clean shutdown
    net = checkpoint.load(sys.argv[2])
    rng = np.random.default_rng(0)
    chars = ["@", "#"]
    part = CharacterSet(rng.integers(0, 255, (400, 28, 28), dtype=np.uint8), np.arange(400) % 2, chars, "noise", "noise")
    split = Split(part, part, chars)
    pool = JobPool(workers=1, store=JobStore(sys.argv[1]))
    job = pool.submit(in_worker(transfer_task, net, split, 0, ENDLESS), "long",
                      "s1", spec={"task": "transfer", "n": 0}, nets={"source": net}, splits={"split": split})
    while not job.snapshot().records:
        time.sleep(0.05)
    print("training", flush=True)
    time.sleep(600)
"""


def test_a_server_shut_down_cleanly_leaves_its_running_jobs_interrupted(tmp_path):
    import signal
    import subprocess
    import sys

    from lenet.runtime.jobs import INTERRUPTED, JobPool
    from lenet.runtime.store import JobStore
    (tmp_path / "server.py").write_text(STOPPING_SERVER)
    server = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), str(tmp_path / "jobs"),
                               str(ROOT / "assets" / "source-synthetic")], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "training"
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    (job,) = JobPool(store=JobStore(tmp_path / "jobs")).jobs()
    assert job.snapshot().state == INTERRUPTED and job.snapshot().error is None, "not failed: it can resume"
