"""`python -m lenet` end to end, as a user runs it: real subprocesses, real files.

Synthetic data comes from the usual cache (generated once, ~17 s, then reused).
The source net is a tiny one trained by `train-source` itself, so the runs are quick.
"""
import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lenet.core import checkpoint
from lenet import cli
from lenet.data.idx import write_idx
from lenet.core.model import PAPER_TABLE1

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--samples", "1", "--levels", "0", "5", "--trials", "1", "--epochs", "1", "--plain"]


def lenet(*args, wait=True):
    cmd = [sys.executable, "-m", "lenet", *map(str, args)]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _finish(p) if wait else p


def _finish(p):
    out, err = p.communicate(timeout=300)
    return p.returncode, out, err


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny source net (20 characters x 10 samples, 1 epoch) made by the CLI itself."""
    out = tmp_path_factory.mktemp("source")
    rc, stdout, err = lenet("train-source", "--data", "synthetic", "--out", out, "--per-class", 10,
                            "--heldout", 5, "--epochs", 1, "--no-drawn", "--json")
    assert rc == 0, err
    res = json.loads(stdout)
    net = checkpoint.load(out)
    assert res["classes"] == "".join(net.classes) and len(net.classes) == 20
    assert 0 <= res["train_acc"] <= 1 and res["min_hamming"] >= 1
    assert "epoch 1:" in err
    return out, net


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory, source):
    out = tmp_path_factory.mktemp("repro") / "out"
    rc, stdout, err = lenet("reproduce", "--data", "synthetic", "--source", source[0], *GRID, "--out", out, "--json")
    assert rc == 0, err
    return out, json.loads(stdout), err


def test_table1_json_is_the_papers_table():
    rc, out, err = lenet("table1", "--json")
    assert rc == 0 and json.loads(out) == PAPER_TABLE1


def test_reproduce_writes_outputs_and_json(reproduction, source):
    out, res, err = reproduction
    assert {"runs.csv", "summary.csv", "report.html", "meta.json"} <= {p.name for p in out.iterdir()}
    assert res["runs"] == 2 and res["complete"] and res["engine"] == "plain"
    assert sorted((r["n"], r["k"], r["runs"]) for r in res["summary"]) == [(0, 1, 1), (5, 1, 1)]
    assert not set(res["target_classes"]) & set(source[1].classes)
    assert "target classes:" in err and "2/2" in err  # the progress bar went to stderr
    lines = (out / "runs.csv").read_text().splitlines()
    assert lines[0] == "n,k,trial,seed,train_acc,test_acc,epochs,seconds,val_acc,train_loss,steps,capped" \
        and len(lines) == 3
    html = (out / "report.html").read_text()
    assert html.count("<script type=\"text/javascript\">/**") <= 1 and "94.38%" in html


def test_reproduce_on_several_class_splits(tmp_path, source):
    """--seeds: a grid per seed in OUT/seed-S, then the spread across them and the claims per seed."""
    out = tmp_path / "splits"
    rc, stdout, err = lenet("reproduce", "--data", "synthetic", "--source", source[0], *GRID, "--seeds", 3, 4,
                            "--out", out, "--json")
    assert rc == 0, err
    res = json.loads(stdout)
    assert res["seeds"] == [3, 4] and res["runs"] == 4
    assert {p.name for p in out.iterdir()} >= {"seed-3", "seed-4", "seeds.csv", "claims.csv"}
    metas = [json.loads((out / f"seed-{s}" / "meta.json").read_text()) for s in (3, 4)]
    assert metas[0]["target_classes"] != metas[1]["target_classes"]  # two class splits
    for row in res["across_seeds"]:
        means = [r["mean"] for s in ("3", "4") for r in res["summary"][s] if (r["n"], r["k"]) == (row["n"], row["k"])]
        assert row["seeds"] == 2 and row["mean"] == pytest.approx(sum(means) / 2)
        assert (row["lo"], row["hi"]) == (pytest.approx(min(means)), pytest.approx(max(means)))
    assert {(c["seed"], c["claim"]) for c in res["claims"]} >= {(3, "small-k"), (4, "small-k")}
    assert (out / "claims.csv").read_text().startswith("seed,claim,statistic,lo,hi,verdict,chosen")
    assert (out / "margins.csv").read_text().startswith("k,n,margin,lo,hi,splits")
    assert all(r["ci_lo"] <= r["mean"] <= r["ci_hi"] for r in res["across_seeds"])


def test_rerun_skips_finished_cells(reproduction, source):
    out, res, _ = reproduction
    before = (out / "runs.csv").read_bytes()
    rc, stdout, err = lenet("reproduce", "--data", "synthetic", "--source", source[0], *GRID, "--out", out, "--json")
    assert rc == 0, err
    assert "resuming: 2 of 2" in err
    assert (out / "runs.csv").read_bytes() == before
    assert json.loads(stdout)["summary"] == res["summary"]


def _emnist_folders(tmp: Path) -> dict[str, Path]:
    """Broken EMNIST releases: truncated IDX, wrong magic, a zip without EMNIST files."""
    images = np.zeros((10, 28, 28), np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    trunc = tmp / "truncated"
    trunc.mkdir()
    write_idx(trunc / "emnist-byclass-test-labels-idx1-ubyte.gz", labels)
    raw = gzip.compress(gzip.decompress(_idx_bytes(tmp / "x.gz", images))[:-100])
    (trunc / "emnist-byclass-test-images-idx3-ubyte.gz").write_bytes(raw)
    magic = tmp / "magic"
    magic.mkdir()
    write_idx(magic / "emnist-byclass-test-images-idx3-ubyte.gz", labels)  # an IDX1 file where IDX3 belongs
    write_idx(magic / "emnist-byclass-test-labels-idx1-ubyte.gz", labels)
    z = tmp / "gzip.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("readme.txt", "no characters here")
    return {"truncated": trunc, "magic": magic, "zip": z, "missing": tmp / "no-such-folder"}


def _idx_bytes(path: Path, a: np.ndarray) -> bytes:
    write_idx(path, a)
    return path.read_bytes()


def _assert_one_error_line(name, rc, err):
    assert rc == 2, (name, err)
    assert "Traceback" not in err, (name, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, err)


def test_every_bad_input_is_one_line_and_exit_2(tmp_path, capsys, reproduction, source):
    out = reproduction[0]
    kept = {name: (out / name).read_bytes() for name in ("runs.csv", "meta.json", "summary.csv")}
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\xff" * 300)
    src = ["--source", source[0]]
    syn = ["reproduce", "--data", "synthetic", "--out", out]
    cases = {name: ["reproduce", "--data", "emnist", "--data-dir", d, "--out", out, *src, *GRID]
             for name, d in _emnist_folders(tmp_path).items()}
    cases.update({
        "k too large": [*syn, *src, "--samples", 460, "--levels", 5, "--trials", 1],
        "overlap": [*syn, *src, "--samples", 1, "--target-classes", source[1].classes[0] + "01"],
        "n > 5": [*syn, *src, "--samples", 1, "--levels", 0, 6],
        "n < 0": [*syn, *src, "--samples", 1, "--levels", -1],
        "k < 1": [*syn, *src, "--samples", 0],
        "trials < 1": [*syn, *src, "--samples", 1, "--trials", 0],
        "negative epochs": [*syn, *src, "--samples", 1, "--epochs", -3],
        "unknown characters": [*syn, *src, "--samples", 1, "--target-classes", "~@"],
        "damaged model": [*syn, "--source", garbage, *GRID],
        "missing model": [*syn, "--source", tmp_path / "none", *GRID],
        "other settings": [*syn, *src, *GRID[:-1], "--seed", 1],
        "not an int": [*syn, *src, "--levels", "x"],
        "source epochs": ["train-source", "--data", "synthetic", "--out", tmp_path / "s", "--epochs", -1],
    })
    expect = {"truncated": "truncated", "magic": "magic", "zip": "no EMNIST", "missing": "no such",
              "k too large": "k = 460", "overlap": "overlap", "n > 5": "0..5", "n < 0": "0..5",
              "k < 1": "k must be", "trials < 1": "trials must be", "negative epochs": "--epochs",
              "unknown characters": "not in synthetic", "damaged model": "not a safetensors",
              "missing model": "no such model", "other settings": "other settings (seed, target_classes differ)",
              "not an int": "invalid int", "source epochs": "--epochs"}
    assert set(expect) == set(cases)
    # Every case in-process (the same main() as `python -m lenet`; torch is imported once) ...
    for name, args in cases.items():
        rc, err = cli.main([str(a) for a in args]), capsys.readouterr().err
        _assert_one_error_line(name, rc, err)
        assert expect[name] in err, (name, err)
    # ... and a few through real processes, in parallel, for the exit code and stderr of the program.
    procs = {name: lenet(*cases[name], wait=False) for name in ("truncated", "damaged model", "n > 5")}
    for name, p in procs.items():
        rc, stdout, err = _finish(p)
        _assert_one_error_line(name, rc, err)
        assert stdout == ""
    for name, data in kept.items():
        assert (out / name).read_bytes() == data, name
    assert not (tmp_path / "s").exists()


def test_data_info_json():
    rc, out, err = lenet("data", "info", "--data", "synthetic", "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["n"] == sum(d["counts"].values()) == 62 * 500 and d["source"] == "synthetic"


def test_bench_profile_shows_where_a_step_goes(capsys):
    from lenet import bench
    assert bench.main(["--profile"]) == 0
    out = capsys.readouterr().out
    from lenet.config import SOURCE_RECIPE, TRANSFER_RECIPE
    assert f"5 stacked n=0 runs, batch {TRANSFER_RECIPE.batch_size}, PyTorch step:" in out
    assert f"source net, batch {SOURCE_RECIPE.batch_size}, PyTorch step:" in out
    from lenet.kernels import lanes as kernels
    if kernels.available():  # the lane kernels in both tables, and the fused step timed
        assert out.count("_ConvBackward") >= 2 and out.count("_PoolBackward") >= 2
        assert f"source net, batch {SOURCE_RECIPE.batch_size}, as fit trains it" in out
        assert f"batch {TRANSFER_RECIPE.batch_size}, as the fast path trains them" in out
    else:
        assert out.count("aten::convolution_backward") >= 2
    assert "ms per step" in out


def test_reproduce_takes_a_step_budget_and_refuses_one_below_a_step(tmp_path, source):
    rc, _, err = lenet("reproduce", "--data", "synthetic", "--steps", 0, "--out", tmp_path / "none")
    assert rc == 2 and "--steps must be >= 1 (got 0)" in err and not (tmp_path / "none").exists()
    out = tmp_path / "budget"
    rc, _, err = lenet("reproduce", "--data", "synthetic", "--source", source[0], "--samples", "1", "--levels", "0",
                       "--trials", "1", "--steps", "3", "--out", out, "--json")
    assert rc == 0, err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["recipe"]["max_steps"] == 3
    assert (out / "runs.csv").read_text().splitlines()[1].split(",")[-2:] == ["4", "True"]  # 2 epochs of 2 steps
