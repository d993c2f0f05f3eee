"""The grid on a Ray cluster (lenet.grid.fast.ray_runner): a one-machine cluster on 127.0.0.1,
results equal to a local run, a killed worker's task run again, and stop."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from lenet.config import SOURCE_RECIPE, TRANSFER_RECIPE
from lenet.data import load
from lenet.data.protocol import default_class_split, source_split
from lenet.grid.cells import Cell
from lenet.grid.fast import run_cells
from lenet.core.net import train_source

ray = pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

RECIPE = TRANSFER_RECIPE.replace(lr=0.03, max_epochs=20, target_train_acc=0.9, patience=3)
CELLS = [Cell(n, k, t) for n in (0, 5) for k in (1, 5) for t in range(2)]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc: only this test's own cluster is touched)."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def cluster():
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to find the cluster's worker processes")
    torch.set_num_threads(1)
    ds = load("synthetic")
    src, tgt = default_class_split(ds.classes, 0)
    source, _ = train_source(source_split(ds, src, per_class=20, heldout_per_class=5),
                             SOURCE_RECIPE.replace(lr=0.05, max_epochs=3), device="cpu")
    local = run_cells(source, ds, tgt, CELLS, RECIPE, 0, workers=2, device="cpu", ray_address="")
    yield source, ds, tgt, local
    if ray.is_initialized():
        ray.shutdown()


def test_ray_run_equals_local_run_and_survives_a_killed_worker(cluster):
    source, ds, tgt, local = cluster
    killed = []

    def kill_one_task_worker():  # the first worker seen running a task group dies mid-task
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in _descendants(os.getpid()):
                if "ray::_run" in _title(pid):
                    time.sleep(0.3)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.05)
    threading.Thread(target=kill_one_task_worker, daemon=True).start()
    seen = []
    remote = run_cells(source, ds, tgt, CELLS, RECIPE, 0, workers=2, ray_address="local", on_result=seen.append)
    assert killed, "no worker was seen running a task"
    assert [(r.cell, r.train_acc, r.test_acc, r.epochs) for r in remote] == \
        [(r.cell, r.train_acc, r.test_acc, r.epochs) for r in local]
    assert sorted(r.cell for r in seen) == sorted(CELLS)  # progress saw every run once
    assert len({r.epochs for r in remote}) > 1 and max(r.test_acc for r in remote) > 0.2


def test_ray_run_stops_promptly(cluster):
    source, ds, tgt, _ = cluster
    long = TRANSFER_RECIPE.replace(max_epochs=100_000, max_steps=0, target_train_loss=0.0)
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()
    t0 = time.perf_counter()
    out = run_cells(source, ds, tgt, [Cell(0, 40, t) for t in range(2)], long, 0, stop=stop, ray_address="local")
    assert time.perf_counter() - t0 < 5.0 and out == []


def test_bad_cluster_addresses_are_one_clear_error_before_any_work(tmp_path):
    import subprocess
    import sys

    for address, message in (("127.0.0.1:1", "cannot reach the Ray cluster at '127.0.0.1:1'"),
                             ("nohost", "use host:port of the head")):
        r = subprocess.run([sys.executable, "-m", "lenet", "reproduce", "--data", "synthetic", "--out",
                            str(tmp_path / "g"), "--ray", address], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert not (tmp_path / "g").exists()  # nothing was started


def test_a_study_on_ray_equals_the_local_study(cluster, tmp_path):
    """`study --ray`: the study's runs go to the cluster, one Ray task each; same rows as local workers."""
    from lenet import studies
    from lenet.studies import finetune
    source, ds, tgt, _ = cluster
    settings = finetune.Settings(levels=(5,), samples=(1, 5), lr_mults=(0.0, 1.0), trials=1, max_epochs=4)
    local = studies.run("finetune", settings, source, ds, tgt, out_dir=tmp_path / "local", workers=2)
    seen = []
    remote = studies.run("finetune", settings, source, ds, tgt, out_dir=tmp_path / "ray", ray="local",
                         progress=lambda done, total: seen.append(done))
    assert remote == local and len(remote) == 4
    assert seen[-1] == 4
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _runs(tmp_path / "ray")]
    assert sorted(strip, key=str) == sorted(({k: v for k, v in r.items() if k != "seconds"}
                                             for r in _runs(tmp_path / "local")), key=str)


def _runs(folder):
    import csv
    return list(csv.DictReader((folder / "runs.csv").open()))
