"""Omniglot's one-shot benchmark: the modified Hausdorff distance on constructed cases, the demo's
scoring, its 38.8% baseline reproduced on the shipped runs, and `bench oneshot --json`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lenet.cli import main
from lenet.data import DataError
from lenet.data.omniglot import SHIPPED_DIR, Run, load_runs
from lenet.ink.hausdorff import modified_hausdorff, modified_hausdorff_matrix, points
from lenet.studies.oneshot import DEMO_MHD_ERROR, error, mhd_predict


def test_modified_hausdorff_on_a_constructed_case():
    a = np.array([[0.0, 0], [0, 2]])
    b = np.array([[0.0, 0], [0, 2], [0, 5]])
    # a -> b: 0, 0 (mean 0); b -> a: 0, 0, 3 (mean 1); the classic Hausdorff distance would be 3
    assert modified_hausdorff(a, b) == pytest.approx(1.0)
    assert modified_hausdorff(b, a) == pytest.approx(1.0)
    assert modified_hausdorff(a, a) == 0.0


def test_points_are_the_ink_centred_on_its_mean():
    ink = np.zeros((5, 5), bool)
    ink[1, 1] = ink[1, 3] = ink[3, 2] = True
    p = points(ink)
    assert p.mean(0) == pytest.approx([0, 0])
    assert sorted(map(tuple, p + [5 / 3, 2])) == [(1, 1), (1, 3), (3, 2)]
    with pytest.raises(DataError, match="blank"):
        points(np.zeros((3, 3), bool))


def test_the_kd_tree_matrix_equals_the_reference():
    rng = np.random.default_rng(0)
    sets = [rng.normal(size=(rng.integers(5, 40), 2)) * 10 for _ in range(6)]
    m = modified_hausdorff_matrix(sets[:3], sets[3:])
    ref = [[modified_hausdorff(a, b) for b in sets[3:]] for a in sets[:3]]
    assert m == pytest.approx(np.array(ref), rel=1e-12)


def _shape(kind: str, dx: int) -> np.ndarray:
    ink = np.zeros((40, 40), bool)
    if kind == "bar":
        ink[20, 5 + dx:35 + dx] = True
    elif kind == "post":
        ink[5:35, 20 + dx] = True
    else:  # a ring
        yy, xx = np.mgrid[:40, :40]
        ink[np.abs(np.hypot(yy - 20, xx - 20 - dx) - 10) < 0.7] = True
    return ink


def test_mhd_nearest_neighbour_and_the_demos_error_on_a_constructed_run():
    kinds = ["bar", "post", "ring"]
    train = [_shape(k, 0) for k in kinds]
    test = [_shape(k, 3) for k in ["ring", "bar", "post"]]  # shifted: centring makes the shift irrelevant
    empty = np.zeros((3, 28, 28), np.uint8)
    run = Run("run01", empty, empty, np.array([2, 0, 1]), train, test, [], [])
    assert mhd_predict(run).tolist() == [2, 0, 1]
    total, per_run = error([run, run], [np.array([2, 0, 1]), np.array([2, 1, 1])])
    assert per_run == pytest.approx([0.0, 100 / 3]) and total == pytest.approx(100 / 6)


def test_the_demos_modified_hausdorff_error_is_reproduced():
    runs = load_runs(SHIPPED_DIR)
    total, _ = error(runs, [mhd_predict(r) for r in runs])
    assert total == pytest.approx(DEMO_MHD_ERROR, abs=0.5)


def test_bench_oneshot_json(capsys):
    code = main(["bench", "oneshot", "--quick", "--json", "--levels", "5", "--readouts", "centroid",
                 "--data-dir", str(SHIPPED_DIR)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["runs"] == 4 and out["test_drawings"] == 80
    by = {(r["method"], r["source"], r["n"], r["readout"]): r for r in out["rows"]}
    assert by["modified Hausdorff NN", "-", None, "-"]["error"] == pytest.approx(36.25)
    net = by["LeNet-5", "emnist", 5, "centroid"]
    assert 0 <= net["error"] < 80 and len(net["per_run"]) == 4  # far better than 20-way chance (95%)
    assert any(p["method"] == "prototypical net" for p in out["published"])


def test_bench_oneshot_refuses_bad_arguments(capsys):
    assert main(["bench", "oneshot", "--readouts", "knn"]) == 2
    assert "readouts must be some of" in capsys.readouterr().err


def test_the_docs_table_is_the_shipped_result():
    """docs/omniglot.md's table is what `python -m lenet tables --write docs/omniglot.md` writes from the
    shipped `bench oneshot --json` output, which is the full benchmark and reproduces the demo's baseline."""
    from pathlib import Path
    from lenet.grid import tables
    from lenet.studies.oneshot import SHIPPED_RESULT
    root = Path(__file__).resolve().parents[1]
    result = json.loads((root / SHIPPED_RESULT).read_text())
    assert result["runs"] == 20 and result["test_drawings"] == 400 and not result["quick"]
    block = tables.markdown("oneshot-table", None)
    assert block in (root / "docs" / "omniglot.md").read_text()
    assert "| omniglot | 4 | 32.00% (27.6-36.7) | 23.75% (19.8-28.2) | 20.00% (16.4-24.2) |" in block
    assert block.count("\n| emnist | ") == 6 and "| modified Hausdorff NN | - | 38.75% (34.1-43.6) |" in block
    (mhd,) = [r for r in result["rows"] if r["method"] == "modified Hausdorff NN"]
    assert mhd["error"] == pytest.approx(DEMO_MHD_ERROR, abs=0.5)
    assert all(not p.startswith("/") for p in result["sources"].values())  # no machine paths shipped


def test_wilson_interval_matches_a_worked_value():
    from lenet.studies.oneshot import wilson
    lo, hi = wilson(80, 400)  # 20% of 400, worked by hand: centre 20.285%, half-width 3.912 points
    assert lo == pytest.approx(16.37, abs=0.01) and hi == pytest.approx(24.20, abs=0.01)
    assert wilson(0, 400)[0] == pytest.approx(0.0, abs=1e-9)


def test_the_readme_table_is_written_from_the_shipped_result():
    """README's one-shot block is what `python -m lenet tables --write README.md` writes from the shipped JSON."""
    from lenet.grid import tables
    root = Path(__file__).resolve().parents[1]
    block = tables.markdown("oneshot", None)
    assert block in (root / "README.md").read_text()
    assert "the paper's readout (mse) | n=4 | 32.00%" in block and "its best readout (centroid) | n=4 | 20.00%" in block
