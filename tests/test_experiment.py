"""The experiment grid: deterministic runs, resumable output that survives stop and SIGKILL."""
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
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


PAPER_LIKE = {(n, k): a for k, row in {
    1: (.20, .26, .27, .33, .34, .45), 5: (.45, .48, .50, .56, .57, .62), 10: (.60, .62, .63, .66, .67, .66),
    20: (.70, .72, .73, .75, .75, .68), 40: (.78, .79, .80, .81, .81, .69)}.items() for n, a in enumerate(row)}


def claim_runs(acc=PAPER_LIKE, splits=3, trials=5, train=None, steps=None):
    """{seed: runs} of a constructed grid: test (and validation) accuracy acc[n, k] plus a trial effect
    shared by every n of the trial (pairing) and a little independent noise; training accuracy 1 and
    steps 1000 for n = 0, 300 for transfer nets, unless given."""
    from lenet.grid.cells import RunResult

    out = {}
    for seed in range(splits):
        rng = np.random.default_rng(seed)
        effect = rng.normal(0, 0.03, trials)
        runs = []
        for (n, k), a in acc.items():
            for t in range(trials):
                test = float(np.clip(a + effect[t] + rng.normal(0, 0.005), 0, 1))
                tr = 1.0 if train is None else train(n, k, test)
                st = (1000 if n == 0 else 300) if steps is None else steps(n, k)
                runs.append(RunResult(n, k, t, t, tr, test, 10, 0.1, test, 0.01, st, False))
        out[seed] = runs
    return out


def verdicts(by_seed) -> dict[str, set[str]]:
    from lenet.report.claims import check_splits

    got: dict[str, set[str]] = {}
    for c in check_splits(by_seed):
        got.setdefault(c["claim"], set()).add(c["verdict"])
    return got


def test_every_claim_holds_on_data_where_it_is_true():
    got = verdicts(claim_runs())
    assert got == {c: {"holds"} for c in ("small-k", "capacity", "n5-flat", "c1-s2", "gap", "effort")}


@pytest.mark.parametrize("claim, change", [
    ("small-k", dict(acc={**PAPER_LIKE, (3, 1): .15, (4, 1): .15, (5, 1): .15})),  # no upper n beats n=0 at k=1
    ("capacity", dict(acc={**PAPER_LIKE, (5, 40): .95})),                       # n=5 is the best at k=40
    ("n5-flat", dict(acc={**PAPER_LIKE, (3, 40): .67})),    # n=3 is flatter than n=5 (the old check passed)
    ("c1-s2", dict(acc={**PAPER_LIKE, (1, 1): .15})),                           # retaining C1 hurts at k=1
    ("gap", dict(train=lambda n, k, test: test if n == 0 else 1.0)),           # n=0 has no gap at all
    ("effort", dict(steps=lambda n, k: 1000 if n == 0 else 3000)),             # transfer takes longer
])
def test_each_claim_check_fails_on_data_where_the_claim_is_false(claim, change):
    """Every claim's check can fail: on a grid built so the claim is false it says "fails" on every
    split and pooled, while the other claims keep their verdicts or lose them only where they share
    the changed cells."""
    got = verdicts(claim_runs(**change))
    assert got[claim] == {"fails"}, got


def test_a_claim_is_inconclusive_when_the_interval_straddles_zero():
    even = {**PAPER_LIKE, (1, 1): PAPER_LIKE[0, 1], (2, 1): PAPER_LIKE[0, 1]}  # n=1, 2 no better than n=0
    assert verdicts(claim_runs(even))["c1-s2"] <= {"inconclusive", "fails"}
    assert "inconclusive" in verdicts(claim_runs(even))["c1-s2"]


def test_the_best_n_is_chosen_on_validation_not_on_test():
    """A claim compares the n the validation set picks: where validation prefers n=3 at k=1 and k=5 but
    the test set prefers n=5, the statistic is n=3's margin."""
    from lenet.report.claims import check

    runs = claim_runs(splits=1)[0]
    for r in runs:
        if r.n == 3 and r.k in (1, 5):
            r.val_acc = 0.99
    row = next(c for c in check(runs) if c["claim"] == "small-k")
    assert row["chosen"] == "k=1: n=3; k=5: n=3"
    t = {(r.n, r.k, r.trial): r.test_acc for r in runs}
    want = min(np.mean([t[3, k, i] - t[0, k, i] for i in range(5)]) for k in (1, 5))
    assert row["statistic"] == pytest.approx(want)


def test_seed_outputs_give_every_cell_and_margin_an_interval(tmp_path):
    from lenet.grid import experiment as E

    by_seed = claim_runs(splits=4)
    rows, claims = E.write_seed_outputs(tmp_path, by_seed)
    assert all(r["ci_lo"] <= r["mean"] <= r["ci_hi"] and r["seeds"] == 4 for r in rows)
    got = E.read_seed_outputs(tmp_path)
    assert {(c["seed"], c["claim"]) for c in got["claims"]} >= {("pooled", "small-k"), (0, "gap")}
    k1 = next(m for m in got["margins"] if m["k"] == 1 and m["n"] == 5)
    assert k1["lo"] < k1["margin"] < k1["hi"] and k1["margin"] == pytest.approx(.25, abs=0.01)

EMNIST_CLASSES = [*"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]


def test_default_class_splits_are_twin_free_and_the_older_pick_is_kept_as_an_option():
    from lenet.data.protocol import new_characters
    from lenet.data.twins import twin_pairs, twins_of

    assert twins_of("o") == {"O", "0"} and twins_of("l") == {"L", "1", "I", "i"} and twins_of("A") == set()
    with_twins = 0
    for seed in range(10):
        src, tgt = default_class_split(EMNIST_CLASSES, seed)
        assert not twin_pairs(src, tgt) and len(tgt) == 20 and not set(src) & set(tgt)
        old_src, old_tgt = default_class_split(EMNIST_CLASSES, seed, twins="allow")
        assert old_src == src  # the same source characters (and source net) either way
        with_twins += bool(twin_pairs(old_src, old_tgt))
    assert with_twins >= 8  # the older pick puts twins in nearly every split: that is why it is not the default
    ds = load("synthetic")
    src, _ = default_class_split(ds, 0)
    assert not twin_pairs(src, new_characters(ds, src, 0))
    assert not twin_pairs(list("0123456789"), new_characters(ds, list("0123456789"), 1))  # another source net
    with pytest.raises(DataError, match="twins must be one of"):
        default_class_split(EMNIST_CLASSES, 0, twins="maybe")


SHIPPED = ROOT / "assets" / "results-emnist"


def test_the_shipped_results_are_twin_free_fair_and_their_tables_come_from_their_runs(tmp_path):
    """assets/results-emnist: >= 10 twin-free class splits, each with its own source net; every n=0
    run fitted its training set; seeds.csv, claims.csv and margins.csv are what the runs give; the
    result tables of the README and docs/reproduction.md are what `python -m lenet tables` writes."""
    from lenet.grid import tables
    from lenet.data.twins import twin_pairs

    splits = E.read_splits(SHIPPED)
    assert len(splits) >= 10
    assert len({meta["settings"]["source_sha256"] for meta, _ in splits.values()}) == len(splits)
    for seed, (meta, runs) in splits.items():
        s = meta["settings"]
        assert not twin_pairs(s["source_classes"], s["target_classes"]), seed
        assert meta["complete"] and len(runs) == 150 and s["recipe"]["max_steps"] == TRANSFER_RECIPE.max_steps
        assert all(r.train_acc == 1.0 and not r.capped for r in runs if r.n == 0), seed
    E.write_seed_outputs(tmp_path, {seed: runs for seed, (_, runs) in splits.items()})
    for name in (E.SEEDS, E.CLAIMS, E.MARGINS):
        assert (tmp_path / name).read_text() == (SHIPPED / name).read_text(), name
    twins = ROOT / "assets" / "results-emnist-twins"
    assert tables.markdown("headline", SHIPPED, twins) in (ROOT / "README.md").read_text()
    assert tables.markdown("results", SHIPPED, twins) in (ROOT / "docs" / "reproduction.md").read_text()


def test_a_single_trial_gives_no_verdict_either_way():
    from lenet.report.claims import check

    rows = check(claim_runs(splits=1, trials=1)[0])
    assert {c["verdict"] for c in rows} == {"inconclusive"} and all(np.isnan(c["lo"]) for c in rows)
