"""The experiment grid: deterministic runs, resumable output that survives stop and SIGKILL."""
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lenet.core import checkpoint
from lenet.grid import experiment as E
from lenet.config import SOURCE_RECIPE, TRANSFER_RECIPE
from lenet.data import DataError, load
from lenet.data.protocol import default_class_split, source_split
from lenet.core.net import train_source

ROOT = Path(__file__).resolve().parents[1]
RECIPE = TRANSFER_RECIPE.replace(max_epochs=2, eval_every=1)
# n = 3..5 train only the small upper levels on cached features: quick runs
GRID = dict(levels=[5, 4, 3], samples=[1], trials=2, seed=0, recipe=RECIPE, fast=False)


@pytest.fixture(scope="module")
def setup():
    ds = load("synthetic")
    src, tgt = default_class_split(ds.classes, 0)
    net, _ = train_source(source_split(ds, src, per_class=10, heldout_per_class=5),
                          SOURCE_RECIPE.replace(max_epochs=1))
    return ds, net, tgt


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open()))


def test_plain_run_is_deterministic(setup):
    ds, net, tgt = setup
    cell = E.Cell(n=4, k=1, trial=1)
    a, b = (E.run_cell(net, ds, tgt, cell, RECIPE, seed=3) for _ in range(2))
    assert a.seed == b.seed == E.run_seed(3, cell) and not a.stopped
    assert (a.train_acc, a.test_acc, a.epochs) == (b.train_acc, b.test_acc, b.epochs)
    assert E.run_seed(3, E.Cell(0, 40, 1)) == a.seed != E.run_seed(3, E.Cell(4, 1, 2))  # trial only


def test_summarize_min_mean_max():
    rs = [E.RunResult(1, 5, t, t, 1.0, acc, 3, 0.1) for t, acc in enumerate([0.5, 0.7, 0.6])]
    rs.append(E.RunResult(0, 5, 0, 0, 1.0, 0.2, 3, 0.1))
    s = E.summarize(rs)
    assert [(r["n"], r["k"], r["runs"]) for r in s] == [(0, 5, 1), (1, 5, 3)]
    assert s[1]["min"] == 0.5 and s[1]["max"] == 0.7 and s[1]["mean"] == pytest.approx(0.6)
    assert all(r["min"] <= r["mean"] <= r["max"] for r in s)


def test_stop_then_resume_keeps_every_finished_row(setup, tmp_path):
    ds, net, tgt = setup
    stop = threading.Event()
    seen = []

    def on_result(r):
        seen.append(r)
        if len(seen) == 2:
            stop.set()

    first = E.reproduce(net, ds, tgt, **GRID, out_dir=tmp_path, on_result=on_result, stop=stop)
    assert len(first) == 2 and not E.json.loads((tmp_path / E.META).read_text())["complete"]
    rows = _rows(tmp_path / E.RUNS)
    assert len(rows) == 3
    progress = []
    every = E.reproduce(net, ds, tgt, **GRID, out_dir=tmp_path, progress=lambda d, t: progress.append((d, t)))
    cells = [r.cell for r in every]
    assert sorted(cells) == sorted(E.grid([5, 4, 3], [1], 2)) and len(set(cells)) == 6
    assert _rows(tmp_path / E.RUNS)[:3] == rows  # earlier rows untouched, in place
    assert progress[0] == (2, 6) and progress[-1] == (6, 6)
    summary = _rows(tmp_path / E.SUMMARY)
    assert summary[0] == ["n", "k", "mean", "min", "max", "runs", "val"] and len(summary) == 4
    assert all(float(r[3]) <= float(r[2]) <= float(r[4]) for r in summary[1:])


def test_bad_files_and_other_settings_are_refused(setup, tmp_path):
    ds, net, tgt = setup
    small = {**GRID, "levels": [5], "trials": 1}
    E.reproduce(net, ds, tgt, **small, out_dir=tmp_path)
    runs = (tmp_path / E.RUNS).read_bytes()
    with pytest.raises(E.RunsFileError, match="other settings"):
        E.reproduce(net, ds, tgt, **{**small, "seed": 1}, out_dir=tmp_path)
    assert (tmp_path / E.RUNS).read_bytes() == runs
    for bad in (runs.replace(b"0.", b"x.", 1), runs + b"5,1,0,0,0.5\n", runs[:20], runs + runs.split(b"\n", 1)[1]):
        (tmp_path / E.RUNS).write_bytes(bad)
        with pytest.raises(E.RunsFileError, match="runs.csv"):
            E.reproduce(net, ds, tgt, **small, out_dir=tmp_path)
        assert (tmp_path / E.RUNS).read_bytes() == bad  # never silently dropped or rewritten


def test_protocol_inputs_checked_before_anything_runs(setup, tmp_path):
    ds, net, tgt = setup
    bad = [({"levels": [6]}, ValueError, "0..5"), ({"samples": [0]}, ValueError, "k must be"),
           ({"trials": 0}, ValueError, "trials"), ({"samples": [451]}, DataError, "k = 451")]
    for change, err, msg in bad:
        with pytest.raises(err, match=msg):
            E.reproduce(net, ds, tgt, **{**GRID, **change}, out_dir=tmp_path / "out")
    with pytest.raises(DataError, match="overlap"):
        E.reproduce(net, ds, tgt[:-1] + net.classes[:1], **GRID, out_dir=tmp_path / "out")
    with pytest.raises(DataError, match="not in"):
        E.reproduce(net, ds, ["~", "@"], **GRID, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fast_path_agrees_with_plain(setup):
    ds, net, tgt = setup
    args = dict(levels=[5], samples=[1], trials=1, seed=0, recipe=RECIPE)
    fast, plain = E.reproduce(net, ds, tgt, **args, fast=True), E.reproduce(net, ds, tgt, **args, fast=False)
    assert [r.cell for r in fast] == [r.cell for r in plain]
    assert fast[0].test_acc == pytest.approx(plain[0].test_acc, abs=0.01)


def test_sigkill_loses_no_finished_run(setup, tmp_path):
    ds, net, tgt = setup
    checkpoint.save(net, tmp_path / "src")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lenet", "reproduce", "--data", "synthetic", "--source", tmp_path / "src",
           "--levels", 5, 4, "--samples", 1, 5, "--trials", 1, "--epochs", 3, "--plain", "--out", out]
    cmd = [str(c) for c in cmd]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if (out / E.RUNS).exists() and len((out / E.RUNS).read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the reproduction ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    cells = E.grid([5, 4], [1, 5], 1)
    before = E.read_runs(out / E.RUNS, cells, 0)  # parses: never half written
    assert 1 <= len(before) < len(cells)
    rows = _rows(out / E.RUNS)
    rc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    after = _rows(out / E.RUNS)
    assert after[:len(rows)] == rows and len(after) == len(cells) + 1
    assert f"resuming: {len(before)} of {len(cells)}" in rc.stderr


UNGUARDED = """
import sys
from lenet.core import checkpoint
from lenet.data import load
from lenet.grid.experiment import reproduce
source = checkpoint.load(sys.argv[1])
ds = load("synthetic")
targets = [c for c in ds.classes if c not in source.classes][:20]
runs = reproduce(source, ds, targets, levels=[4, 5], samples=[1], trials=1)
print("finished", len(runs))
"""


def test_a_script_without_a_main_guard_runs_the_fast_path(tmp_path):
    """A notebook-style script that calls reproduce at its top level (no `if __name__ ==
    "__main__":`) runs once: the worker processes do not import it again."""
    script = tmp_path / "grid.py"
    script.write_text(UNGUARDED)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(script), str(ROOT / "assets" / "source-synthetic")], env=env,
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split("\n").count("finished 2") == 1, p.stdout


def test_claims_are_checked_on_the_means():
    from lenet.report.claims import check

    def summary(m):
        return [{"n": n, "k": k, "mean": v} for (n, k), v in m.items()]
    paper_like = {(0, 1): .2, (1, 1): .22, (2, 1): .23, (3, 1): .3, (4, 1): .3, (5, 1): .4,
                  (0, 5): .4, (3, 5): .5, (5, 5): .55, (0, 10): .55, (5, 10): .58,
                  (0, 40): .72, (3, 40): .74, (4, 40): .75, (5, 40): .65}
    got = {c["claim"]: c["holds"] for c in check(summary(paper_like))}
    assert got == {"small-k": True, "capacity": True, "n5-flat": True, "c1-s2": True}
    flipped = {**paper_like, (5, 40): .9, (1, 1): .1, (0, 5): .6}  # n=5 best at k=40; n=1 hurts; n=0 wins at k=5
    got = {c["claim"]: c["holds"] for c in check(summary(flipped))}
    assert got == {"small-k": False, "capacity": False, "n5-flat": False, "c1-s2": False}
    assert {c["holds"] for c in check(summary({(0, 1): .2}))} == {None}
