"""The paper's grid on Omniglot: 20 new characters of one alphabet per class split, the test and validation
sizes passed down to the fast path, the readouts beside the grid, and the tables written from the CSVs."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lenet.cli import main
from lenet.config import TRANSFER_RECIPE
from lenet.core import checkpoint
from lenet.data import DataError, load
from lenet.data import omniglot as O
from lenet.grid import experiment as E
from lenet.grid import readouts as R
from lenet.grid.cells import Cell, run_cell
from lenet.grid.fast import run_cells
from test_omniglot import _background

ROOT = Path(__file__).resolve().parents[1]
DRAWERS = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three alphabets of 20 characters x 4 drawers (Latin, EMNIST's script, is never a grid alphabet)."""
    path = tmp_path_factory.mktemp("omniglot") / "images_background_small1.zip"
    return _background(path, alphabets=("Greek", "Korean", "Latin"), chars=20, drawers=DRAWERS)


def test_each_split_takes_twenty_new_characters_of_one_alphabet(data):
    ds = load("omniglot", data.parent)
    assert O.grid_alphabets(ds) == ["Greek", "Korean"]
    picks = {s: O.alphabet_characters(ds, seed=s) for s in range(4)}
    assert [a for a, _ in picks.values()] == ["Greek", "Korean", "Greek", "Korean"]  # seeds take each in turn
    for alphabet, chars in picks.values():
        assert len(chars) == 20 and all(c.startswith(alphabet + "/") for c in chars)
    known = O.alphabets(ds)["Greek"][:1]  # a source net that knows a Greek character: Greek has 19 new ones left
    assert O.grid_alphabets(ds, known) == ["Korean"]
    assert O.alphabet_characters(ds, known, seed=2) == picks[1]
    with pytest.raises(DataError, match=r"no alphabet .* has 20 characters the source net does not know \(Latin"):
        O.alphabet_characters(ds, known + O.alphabets(ds)["Korean"][:1])


def test_the_fast_path_scores_on_the_test_and_validation_sizes_given(data):
    """Omniglot's sizes reach the fast path: its runs equal the plain reference's, on 1 test drawer x 20."""
    ds = load("omniglot", data.parent)
    source = checkpoint.load(checkpoint.shipped("emnist"))
    _, chars = O.alphabet_characters(ds, source.classes, seed=0)
    recipe = TRANSFER_RECIPE.replace(max_epochs=3, max_steps=0)
    sizes = dict(test_per_class=1, val_per_class=1)
    cells = [Cell(5, 2, 0), Cell(4, 2, 0)]
    fast = run_cells(source, ds, chars, cells, recipe, 0, workers=1, **sizes)
    for cell, f in zip(cells, fast):
        plain = run_cell(source, ds, chars, cell, recipe, 0, **sizes)
        assert f.test_acc == pytest.approx(plain.test_acc, abs=1e-9) and f.val_acc == pytest.approx(plain.val_acc)
        assert round(f.test_acc * 20, 6).is_integer() and round(f.val_acc * 20, 6).is_integer()  # 20 drawings each
    with pytest.raises(DataError, match=r"has 4 samples: too few for 2 test \+ 1 validation \+ k=2"):
        run_cells(source, ds, chars, cells, recipe, 0, workers=1, test_per_class=2, val_per_class=1)


def test_reproduce_on_omniglot_with_readouts(data, tmp_path, capsys):
    out = tmp_path / "grid"
    common = ["reproduce", "--data", "omniglot", "--data-dir", str(data.parent), "--levels", "5", "--trials", "1",
              "--epochs", "2", "--plain", "--seeds", "0", "1", "--out", str(out)]
    # k = 3 of 4 drawers leaves one to test on and none to validate on: the k-up-to-19 protocol in small
    assert main([*common, "--samples", "3", "--test-per-class", "1", "--val-per-class", "0",
                 "--readouts", "mse,centroid", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for seed, alphabet in ((0, "Greek"), (1, "Korean")):
        meta = json.loads((out / f"seed-{seed}" / "meta.json").read_text())
        s = meta["settings"]
        assert all(c.startswith(alphabet + "/") for c in s["target_classes"]) and len(s["target_classes"]) == 20
        assert (s["test_per_class"], s["val_per_class"], s["samples"]) == (1, 0, [3])
        assert s["source_classes"] == checkpoint.load(checkpoint.shipped("emnist")).classes  # the default source
        assert "Readouts side by side" in (out / f"seed-{seed}" / "report.html").read_text()
    (margin,) = list(csv.DictReader((out / R.MARGINS).open()))  # centroid minus mse, paired within each split
    diffs = [res["readouts"][str(s)][0]["centroid"] - res["readouts"][str(s)][0]["mse"] for s in (0, 1)]
    assert margin["readout"] == "centroid" and float(margin["margin"]) == pytest.approx(sum(diffs) / 2, abs=1e-6)
    rows = list(csv.DictReader((out / R.SEEDS).open()))
    assert [(r["n"], r["k"], r["readout"], r["seeds"]) for r in rows] == [("5", "3", "mse", "2"),
                                                                          ("5", "3", "centroid", "2")]
    mse = [res["readouts"][str(s)][0]["mse"] for s in (0, 1)]
    assert float(rows[0]["mean"]) == pytest.approx(sum(mse) / 2)  # the grid's own runs, averaged over splits
    assert "centroid" in (out / R.REPORT).read_text()
    # the defaults (8 test + 2 validation drawers) do not fit 4 drawers: one line, nothing written
    assert main([*common[:-1], str(tmp_path / "other"), "--samples", "1"]) == 2
    assert "k = 1 needs 1 + 2 validation + 8 test samples per target class" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_readout_tables_are_generated_from_the_shipped_csvs():
    from lenet.grid import tables
    doc = (ROOT / "docs" / "omniglot.md").read_text()
    for block in ("readouts-emnist", "readouts-omniglot"):
        assert tables.markdown(block, None) in doc, block
    assert tables.markdown("omniglot-margins", None) in (ROOT / "README.md").read_text()
    splits = E.read_splits(tables.READOUTS["readouts-omniglot"])  # what the shipped tables come from
    assert sorted(splits) == [0, 1, 2, 3, 4, 5]
    assert [m["settings"]["target_classes"][0].split("/")[0] for m, _ in splits.values()] == \
        ["Balinese", "Early_Aramaic", "Greek", "Japanese_(katakana)", "Korean", "Sanskrit"]
    assert all(m["complete"] and m["settings"]["test_per_class"] == 8 for m, _ in splits.values())
