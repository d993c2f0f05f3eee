"""The fast path (lenet.grid.fast) against the plain per-run reference (lenet.grid.experiment.run_cell)."""
import threading
import time

import pytest
import torch

from lenet.config import SOURCE_RECIPE, TRANSFER_RECIPE
from lenet.data import load
from lenet.data.protocol import default_class_split, source_split
from lenet.grid.cells import Cell, run_cell
from lenet.grid.fast import plan, run_cells
from lenet.core.net import train_source

# A larger step than the paper recipe, so the tiny nets leave the chance plateau within a few epochs
# (much larger, 0.1, is chaotic: rounding differences then grow into different nets), and a
# stopping rule under which runs of one group stop at different epochs (regrouping).
RECIPE = TRANSFER_RECIPE.replace(lr=0.03, batch_size=4, max_epochs=20, target_train_acc=0.9, target_train_loss=0.0,
                                 patience=3)
CELLS = [Cell(n, k, 0) for n in range(6) for k in (1, 5)]  # every n


@pytest.fixture(scope="module")
def setup():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches: one thread is faster and keeps the comparison cheap
    ds = load("synthetic")
    src, tgt = default_class_split(ds.classes, 0)
    source, _ = train_source(source_split(ds, src, per_class=20, heldout_per_class=5),
                             SOURCE_RECIPE.replace(lr=0.05, max_epochs=3))
    plain = [run_cell(source, ds, tgt, c, RECIPE, 0) for c in CELLS]
    yield source, ds, tgt, plain
    torch.set_num_threads(threads)


def test_fast_matches_plain_per_run(setup):
    source, ds, tgt, plain = setup
    seen = []
    fast = run_cells(source, ds, tgt, CELLS, RECIPE, 0, on_result=seen.append, workers=1)
    assert [(r.n, r.k, r.trial, r.seed) for r in fast] == [(r.n, r.k, r.trial, r.seed) for r in plain]
    assert [r.epochs for r in fast] == [r.epochs for r in plain]
    deltas = [abs(f.test_acc - p.test_acc) for f, p in zip(fast, plain)]
    assert max(deltas) <= 0.01, deltas
    assert max(abs(f.train_acc - p.train_acc) for f, p in zip(fast, plain)) <= 0.01
    exact = sum(d == 0 for d in deltas)
    assert exact >= len(CELLS) // 2, f"only {exact}/{len(CELLS)} accuracies identical"
    assert sorted(seen, key=lambda r: (r.n, r.k)) == fast  # on_result saw every run once
    assert len({r.epochs for r in fast}) > 1  # runs stopped at different epochs: the per-run rule was exercised
    assert max(r.test_acc for r in fast) > 0.2  # the nets learned: the comparison is not of chance-level runs


def test_fast_matches_plain_with_the_loss_and_validation_rules(setup):
    """The training-loss target and the best-validation-epoch rule (with its restored weights)
    give the same epochs and accuracies on both paths."""
    source, ds, tgt, _ = setup
    recipe = RECIPE.replace(target_train_acc=1.01, patience=0, target_train_loss=0.2, val_patience=2)
    cells = [Cell(n, k, 0) for n in (0, 3, 5) for k in (1, 5)]
    plain = [run_cell(source, ds, tgt, c, recipe, 0) for c in cells]
    for fast in (run_cells(source, ds, tgt, cells, recipe, 0, workers=1),
                 run_cells(source, ds, tgt, cells, recipe, 0, device="cpu", fused=True)):  # the CUDA path's code
        assert [r.epochs for r in fast] == [r.epochs for r in plain]
        assert max(abs(f.test_acc - p.test_acc) for f, p in zip(fast, plain)) <= 0.01
        assert max(abs(f.val_acc - p.val_acc) for f, p in zip(fast, plain)) <= 0.01
        assert max(abs(f.train_acc - p.train_acc) for f, p in zip(fast, plain)) <= 0.01
        assert all(0 <= r.val_acc <= 1 for r in fast) and len({r.epochs for r in fast}) > 1


def test_the_step_budget_is_one_stopping_rule_on_every_path(setup):
    """recipe.max_steps (StoppingRule): a k=1 run (5 steps an epoch at batch 4) gets more epochs than a
    k=5 run (25); the plain loop, the groups and the fused grid stop each run at the same epoch, count
    the same steps, mark the same runs as ended at the budget and report the same final training loss."""
    source, ds, tgt, _ = setup
    recipe = RECIPE.replace(max_epochs=1000, max_steps=40, target_train_acc=0.25, patience=0)
    cells = [Cell(n, k, 0) for n in (0, 3, 5) for k in (1, 5)]
    plain = [run_cell(source, ds, tgt, c, recipe, 0) for c in cells]
    assert {r.k: r.epochs for r in plain if r.capped} == {1: 8, 5: 2}  # ceil(40 / steps per epoch)
    assert any(not r.capped for r in plain)  # some runs fitted first: both ends of the rule exercised
    assert all(r.capped == (r.train_acc < 0.25) for r in plain)
    assert all(r.steps == r.epochs * (5 if r.k == 1 else 25) for r in plain)
    for fast in (run_cells(source, ds, tgt, cells, recipe, 0, workers=1),
                 run_cells(source, ds, tgt, cells, recipe, 0, device="cpu", fused=True)):
        assert [(r.epochs, r.steps, r.capped) for r in fast] == [(r.epochs, r.steps, r.capped) for r in plain]
        assert max(abs(f.train_loss - p.train_loss) for f, p in zip(fast, plain)) <= 1e-3
        assert max(abs(f.test_acc - p.test_acc) for f, p in zip(fast, plain)) <= 0.01


def test_two_workers_agree_with_one(setup):
    source, ds, tgt, plain = setup
    two = run_cells(source, ds, tgt, CELLS, RECIPE, 0, workers=2)
    assert [r.epochs for r in two] == [r.epochs for r in plain]
    assert max(abs(f.test_acc - p.test_acc) for f, p in zip(two, plain)) <= 0.01


def test_stop_ends_run_cells_promptly(setup):
    source, ds, tgt, _ = setup
    cells = [Cell(n, 40, t) for n in (0, 1) for t in range(3)]
    long = TRANSFER_RECIPE.replace(max_epochs=100_000, max_steps=0, target_train_loss=0.0)
    for workers in (1, 2):
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        t0 = time.perf_counter()
        out = run_cells(source, ds, tgt, cells, long, 0, stop=stop, workers=workers)
        assert time.perf_counter() - t0 < 3.0, f"workers={workers} took too long to stop"
        assert out == []  # nothing finished: no partial run is reported as a result


def test_plan_keeps_every_cell_once_and_groups_by_n():
    cells = [Cell(n, k, t) for n in range(6) for k in (1, 5, 10, 20, 40) for t in range(5)]
    groups = plan(cells, 2)
    assert sorted(i for g in groups for i in g) == list(range(len(cells)))
    assert all(len({cells[i].n for i in g}) == 1 for g in groups)
    assert len(groups) > 6  # the costly n are split so two workers finish together


def test_fused_grid_matches_plain_per_run(setup):
    """Every cell as one model (the CUDA path), run on the CPU: same epochs and accuracies as plain."""
    source, ds, tgt, plain = setup
    seen = []
    fused = run_cells(source, ds, tgt, CELLS, RECIPE, 0, device="cpu", fused=True, on_result=seen.append)
    assert [(r.n, r.k, r.trial, r.seed) for r in fused] == [(r.n, r.k, r.trial, r.seed) for r in plain]
    assert [r.epochs for r in fused] == [r.epochs for r in plain]
    assert max(abs(f.test_acc - p.test_acc) for f, p in zip(fused, plain)) <= 0.01
    assert max(abs(f.train_acc - p.train_acc) for f, p in zip(fused, plain)) <= 0.01
    assert max(abs(f.val_acc - p.val_acc) for f, p in zip(fused, plain)) <= 0.01
    assert sorted(seen, key=lambda r: (r.n, r.k)) == fused


def test_fused_grid_stops_promptly(setup):
    source, ds, tgt, _ = setup
    cells = [Cell(n, 40, t) for n in (0, 1) for t in range(2)]
    long = TRANSFER_RECIPE.replace(max_epochs=100_000, max_steps=0, target_train_loss=0.0)
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    t0 = time.perf_counter()
    assert run_cells(source, ds, tgt, cells, long, 0, stop=stop, device="cpu", fused=True) == []
    assert time.perf_counter() - t0 < 4.0


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("runs,batch", [(1, 16), (3, 5), (9, 1)])
def test_lane_kernels_give_the_textbook_gradients(n, runs, batch, monkeypatch, autograd_nodes):
    """lenet.kernels.lanes (C1, S2, C3, S4 with the batch in the SIMD lanes, hand-written backward)
    against the plain PyTorch levels (grouped convolutions, autograd) on the same stacked
    parameters: outputs and every parameter's gradient, for every n the kernels serve."""
    from lenet.kernels import lanes as kernels
    from lenet.grid.fast.stacked import StackedUpper
    from lenet.core.model import LeNet5
    if kernels.numba is None:
        pytest.skip("numba is not installed")
    g = torch.Generator().manual_seed(10 * n + runs)
    shape = {0: (1, 32, 32), 1: (6, 28, 28), 2: (6, 14, 14), 3: (16, 10, 10)}[n]
    model = StackedUpper([LeNet5(seed=i) for i in range(runs)], n)
    x = torch.rand(batch, runs, *shape, generator=g) * (1 if n == 0 else 3.4) - (0 if n == 0 else 1.7)
    target = torch.randn(runs, batch, 20, generator=g)
    results = {}
    for mode in ("numba", "torch"):
        monkeypatch.setenv("LENET_KERNELS", mode)
        out = model.forward(x)
        names = autograd_nodes(out)
        assert (("_ConvBackward" in names or n == 3) and "_PoolBackward" in names) == (mode == "numba"), names
        results[mode] = out, torch.autograd.grad(((out - target) ** 2).sum(), list(model.params.values()))
    (fast, fast_grads), (plain, plain_grads) = results["numba"], results["torch"]
    assert torch.allclose(fast, plain, atol=1e-5)
    for name, a, b in zip(model.params, fast_grads, plain_grads):
        assert a.shape == b.shape
        # sums over a batch of maps in another order: compare against the gradient's scale
        assert (a - b).abs().max() <= 1e-4 * b.abs().max(), (name, (a - b).abs().max(), b.abs().max())
        assert b.abs().max() > 0, name  # every level's gradient is exercised


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5])
def test_the_fused_group_step_is_the_autograd_step(n, monkeypatch):
    """StackedUpper.train_step: every run's SGD + momentum step as one numba call (lenet.kernels.step)
    against forward + autograd + sgd_step, on the same stacked runs, with padded rows (weight 0),
    across a regroup: the same weights up to float rounding."""
    from lenet.kernels import lanes as kernels
    from lenet.grid.fast.stacked import StackedUpper
    from lenet.core.model import LeNet5
    if kernels.numba is None:
        pytest.skip("numba is not installed")
    g = torch.Generator().manual_seed(n)
    shape = {0: (1, 32, 32), 1: (6, 28, 28), 2: (6, 14, 14), 3: (16, 10, 10), 4: (16, 5, 5), 5: (120,)}[n]
    h = torch.rand(40, *shape, generator=g) * (1 if n == 0 else 3.4) - (0 if n == 0 else 1.7)
    targets = torch.randn(40, 20, generator=g).sign()
    models = {mode: StackedUpper([LeNet5(seed=i) for i in range(4)], n) for mode in ("numba", "torch")}
    for mode, model in models.items():
        monkeypatch.setenv("LENET_KERNELS", mode)
        gs = torch.Generator().manual_seed(1)
        for step in range(4):
            if step == 2:
                model.keep([3, 0, 2])  # regroup: a run left, the rest reordered
            R = model.runs
            idx = torch.randint(0, 40, (R, 16), generator=gs)
            weight = torch.full((R, 16), 1 / (16 * 20))
            weight[0, 11:] = 0  # a short batch: padded rows
            model.train_step(h, idx, targets[idx], weight, 0.05, 0.9)
        assert (model.fused_step is not None) == (mode == "numba")
    for name, a in models["numba"].params.items():
        b = models["torch"].params[name]
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), (name, (a - b).abs().max())
        assert not torch.equal(a, StackedUpper([LeNet5(seed=i) for i in (3, 0, 2)], n).params[name]), name
