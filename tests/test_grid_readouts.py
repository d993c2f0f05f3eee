"""`reproduce --readouts`: the other readouts on the grid's very cells, side by side with the paper's,
while runs.csv and a run without --readouts stay exactly as before."""
from __future__ import annotations

import json

import pytest

from lenet import cli
from lenet.core import checkpoint
from lenet.data.emnist import SUBSET_DIR
from lenet.grid import readouts as R
from lenet.grid.cells import FIELDS

GRID = ["--data", "emnist", "--data-dir", str(SUBSET_DIR), "--source", str(checkpoint.shipped("emnist")),
        "--levels", "5", "--samples", "1", "--trials", "1", "--epochs", "2", "--plain"]


def test_reproduce_with_readouts_adds_them_beside_the_unchanged_grid(tmp_path, capsys):
    out = tmp_path / "grid"
    assert cli.main(["reproduce", *GRID, "--out", str(out), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert "readouts" not in plain and not (out / R.CSV).exists()  # without --readouts: today's grid
    runs_csv = (out / "runs.csv").read_text()

    assert cli.main(["reproduce", *GRID, "--out", str(out), "--json", "--readouts", "mse,ce,centroid,probe"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (out / "runs.csv").read_text() == runs_csv  # resumed: the grid's runs untouched
    assert runs_csv.splitlines()[0] == ",".join(FIELDS)
    (row,) = res["readouts"]
    assert (row["n"], row["k"]) == (5, 1) and row["mse"] == plain["summary"][0]["mean"]
    assert all(0 < row[k] <= 1 and row[f"{k}_runs"] == 1 for k in ("ce", "centroid", "probe"))
    lines = (out / R.CSV).read_text().splitlines()
    assert lines[0] == "n,k,trial,readout,seed,test_acc,seconds" and len(lines) == 4
    assert (out / R.SUMMARY).read_text().splitlines()[0] == "n,k,mse,ce,centroid,probe,mse_runs,ce_runs,centroid_runs,probe_runs"
    html = (out / R.REPORT).read_text()
    assert all(f"<th>{k}</th>" in html for k in ("mse", "ce", "centroid", "probe"))

    before = (out / R.CSV).read_text()
    assert cli.main(["reproduce", *GRID, "--out", str(out), "--readouts", "centroid"]) == 0
    assert (out / R.CSV).read_text() == before  # resumed: nothing run twice


def test_a_damaged_readouts_file_is_one_clear_error(tmp_path):
    from lenet.grid.runfolder import RunsFileError
    (tmp_path / R.CSV).write_text("n,k\n1,2\n")
    with pytest.raises(RunsFileError, match="the header is not n,k,trial,readout"):
        R.read_readouts(tmp_path / R.CSV)
    (tmp_path / R.CSV).write_text("n,k,trial,readout,seed,test_acc,seconds\n1,5,0,softmax,0,0.5,1.0\n")
    with pytest.raises(RunsFileError, match="line 2: unknown readout 'softmax'"):
        R.read_readouts(tmp_path / R.CSV)
