"""The device choice (lenet.device) and, where a CUDA GPU is present, training on it.

The CUDA tests skip without a GPU; scripts/gpu-check.sh runs them on one."""
import subprocess
import sys

import pytest
import torch

from lenet.config import SOURCE_RECIPE, TRANSFER_RECIPE
from lenet.data import load
from lenet.data.protocol import default_class_split, source_split
from lenet.device import resolve
from lenet.grid.cells import Cell, run_cell
from lenet.grid.fast import run_cells
from lenet.core.net import train_source

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def test_resolve_names_and_environment(monkeypatch):
    monkeypatch.delenv("LENET_DEVICE", raising=False)
    assert resolve("cpu") == torch.device("cpu")
    assert resolve("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve(None) == resolve("auto")
    monkeypatch.setenv("LENET_DEVICE", "CPU")
    assert resolve(None) == torch.device("cpu")
    monkeypatch.setenv("LENET_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="LENET_DEVICE='gpu0'"):
        resolve(None)
    with pytest.raises(ValueError, match="use one of auto, cpu, cuda"):
        resolve("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        resolve("cuda")
    r = subprocess.run([sys.executable, "-m", "lenet", "reproduce", "--data", "synthetic", "--out", "/nonexistent/x",
                        "--device", "cuda"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "sees no CUDA GPU" in r.stderr and r.stderr.count("\n") == 1, r.stderr


@pytest.fixture(scope="module")
def small():
    ds = load("synthetic")
    src, tgt = default_class_split(ds.classes, 0)
    split = source_split(ds, src, per_class=20, heldout_per_class=5)
    return ds, src, tgt, split


@cuda
def test_fit_on_cuda_matches_cpu(small):
    _, _, _, split = small
    recipe = SOURCE_RECIPE.replace(lr=0.05, max_epochs=3)
    net_cpu, fit_cpu = train_source(split, recipe, device="cpu")
    net_gpu, fit_gpu = train_source(split, recipe, device="cuda")
    assert next(net_gpu.model.parameters()).device.type == "cpu"  # handed back where it came from
    assert fit_gpu.epochs == fit_cpu.epochs
    assert abs(fit_gpu.train_acc - fit_cpu.train_acc) <= 0.01 and abs(fit_gpu.test_acc - fit_cpu.test_acc) <= 0.01


@cuda
def test_fused_grid_on_cuda_matches_plain_cpu(small):
    ds, src, tgt, split = small
    source, _ = train_source(split, SOURCE_RECIPE.replace(lr=0.05, max_epochs=3), device="cpu")
    recipe = TRANSFER_RECIPE.replace(lr=0.03, max_epochs=20, target_train_acc=0.9, patience=3)
    cells = [Cell(n, k, 0) for n in range(6) for k in (1, 5)]
    plain = [run_cell(source, ds, tgt, c, recipe, 0, device="cpu") for c in cells]
    gpu = run_cells(source, ds, tgt, cells, recipe, 0, device="cuda")
    assert [r.cell for r in gpu] == cells
    assert max(abs(g.test_acc - p.test_acc) for g, p in zip(gpu, plain)) <= 0.01
    assert sum(g.epochs == p.epochs for g, p in zip(gpu, plain)) >= len(cells) - 2
