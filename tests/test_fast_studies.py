"""The studies' runs on the fast path (lenet.grid.fast.nets: per-parameter gradient scales, per-run frozen
levels) against the same runs through the plain `fit` with gradient hooks (lenet.studies.common.run_plain)."""
import pytest
import torch

from lenet.config import TRANSFER_RECIPE
from lenet.core import checkpoint
from lenet.core.model import LeNet5
from lenet.data import load
from lenet.data.protocol import new_characters
from lenet.grid.fast.nets import NetRun, train_nets
from lenet.grid.fast.stacked import StackedUpper
from lenet.studies import partial as P
from lenet.studies.common import run_group, run_plain, shared_for, training_set

from test_studies import ROOT

# as tests/test_fast.py: a step that leaves the chance plateau in a few epochs, and a rule under which
# the runs of one group stop at different epochs (regrouping)
RECIPE = TRANSFER_RECIPE.replace(lr=0.03, batch_size=4, max_epochs=8, max_steps=0, target_train_acc=0.9,
                                 target_train_loss=0.0, patience=3)


@pytest.fixture(scope="module")
def setup():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ds = load("synthetic")
    source = checkpoint.load(ROOT / "assets" / "source-synthetic")
    targets = new_characters(ds, source.classes, 0)
    yield ds, source, targets
    torch.set_num_threads(threads)


def _compare(shared, tasks, fields=("target_acc", "train_acc")):
    plain = [run_plain(shared, t) for t in tasks]
    fast = run_group(shared, {"tasks": tasks})
    assert [r["epochs"] for r in fast] == [r["epochs"] for r in plain]
    for f in fields:
        deltas = [abs(a[f] - b[f]) for a, b in zip(fast, plain)]
        assert max(deltas) <= 0.01, (f, deltas)
    assert len({r["epochs"] for r in fast}) > 1, "runs stopped at different epochs: the group regrouped"
    assert max(r["target_acc"] for r in fast) > 0.2, "the nets learned"
    return plain, fast


def test_fine_tuned_levels_on_the_fast_path_match_fit_with_hooks(setup):
    """AnB+ at lr x lr_mult (a gradient scale on the retained levels, every level trained) and frozen AnB,
    with the source net's forgetting computed from the fast path's final weights."""
    ds, source, targets = setup
    shared = {**shared_for(source, ds, targets, 0, RECIPE, heldout=True), "study": "finetune"}
    tr = {k: training_set(ds, source, targets, k, 0, 0) for k in (1, 2)}
    tasks = [{"n": n, "lr_mult": m, "k": k, "seed": 10 * n + k, **tr[k]}
             for n, m, k in ((3, 0.0, 1), (3, 0.0, 2), (5, 0.1, 1), (4, 1.0, 2))]
    plain, fast = _compare(shared, tasks, ("target_acc", "train_acc", "source_drop"))
    assert all(r["source_drop"] == 0.0 for r, t in zip(fast, tasks) if t["lr_mult"] == 0)
    assert any(abs(r["source_drop"]) > 0 for r, t in zip(fast, tasks) if t["lr_mult"] == 1.0)


def test_partial_and_random_frozen_levels_on_the_fast_path_match_fit(setup):
    """Kept maps held by a zero gradient scale (partial) and each run's own random frozen levels (controls)."""
    ds, source, targets = setup
    tr = {k: training_set(ds, source, targets, k, 0, 0) for k in (1, 3)}
    shared = {**shared_for(source, ds, targets, 0, RECIPE), "level": "c3", "study": "partial"}
    _compare(shared, [{"k": k, "kept": kept, "seed": 7 + k, **tr[k]}
                      for kept in ("", "0 3 5 9", " ".join(map(str, range(16)))) for k in (1, 3)])
    shared = {**shared_for(source, ds, targets, 0, RECIPE), "study": "controls"}
    _compare(shared, [{"arm": a, "n": n, "k": k, "seed": 3 * n + k, **tr[k]}
                      for a, n in (("AnB", 3), ("random-frozen", 2), ("random-scaled", 3)) for k in (1, 3)])


def test_kept_maps_are_bit_identical_after_fast_training(setup):
    """skorch's freezing test on the fast path: the kept maps never move, the released ones do."""
    ds, source, targets = setup
    kept = [1, 4, 7, 15]
    build = P.partial_build(source.model, "c3", kept, seed=3)
    before = {k: v.clone() for k, v in build.net.c3.state_dict().items()}
    tr = training_set(ds, source, targets, 3, 0, 0)
    test = shared_for(source, ds, targets, 0, RECIPE)
    (fin,) = train_nets([NetRun(0, build.net, build.level, 3, tr["images"], tr["labels"], build.scale)],
                        test["test_images"], test["test_labels"], 20, RECIPE, keep_weights=True)
    rows = P.C.map_rows(build.net, "c3", kept)
    for p in ("kernels", "bias"):
        after = fin.weights[f"c3.{p}"]
        assert torch.equal(after[rows[p]], source.model.c3.get_parameter(p)[rows[p]]), p
        free = torch.ones(len(after), dtype=torch.bool)
        free[rows[p]] = False
        assert not torch.equal(after[free], before[p][free]), f"{p}: the released maps trained"


@pytest.mark.parametrize("n", [0, 2, 3])
def test_the_fused_step_scales_each_gradient_as_autograd_does(n, monkeypatch):
    """StackedUpper with per-run gradient scales (0: frozen entries, 0.1: a slower level): the numba step and
    autograd + scaled SGD agree, across a regroup, and entries scaled by 0 never move."""
    from lenet.kernels import lanes as kernels
    if kernels.numba is None:
        pytest.skip("numba is not installed")
    g = torch.Generator().manual_seed(n)
    shape = {0: (1, 32, 32), 2: (6, 14, 14), 3: (16, 10, 10)}[n]
    h = torch.rand(40, *shape, generator=g) * (1 if n == 0 else 3.4) - (0 if n == 0 else 1.7)
    targets = torch.randn(40, 20, generator=g).sign()
    nets = [LeNet5(seed=i) for i in range(4)]
    name = {0: "c1.weight", 2: "c3.kernels", 3: "s4.coef"}[n]
    layer, p = name.split(".")
    mask = torch.ones_like(getattr(nets[0], layer).get_parameter(p))
    mask[:2] = 0.0
    scales = [{name: mask}, None, {name: torch.full_like(mask, 0.1), "f6.bias": torch.full((20,), 0.5)}, {name: mask}]
    models = {mode: StackedUpper(nets, n, scales) for mode in ("numba", "torch")}
    for mode, model in models.items():
        monkeypatch.setenv("LENET_KERNELS", mode)
        gs = torch.Generator().manual_seed(1)
        for step in range(4):
            if step == 2:
                model.keep([3, 0, 2])
            idx = torch.randint(0, 40, (model.runs, 16), generator=gs)
            model.train_step(h, idx, targets[idx], torch.full((model.runs, 16), 1 / (16 * 20)), 0.05, 0.9)
        assert (model.fused_step is not None) == (mode == "numba")
    for k, a in models["numba"].params.items():
        assert torch.allclose(a, models["torch"].params[k], rtol=1e-4, atol=1e-6), k
    start = StackedUpper([nets[i] for i in (3, 0, 2)], n).params[name]
    after = models["numba"].params[name]
    assert torch.equal(after[0, :2], start[0, :2]) and torch.equal(after[1, :2], start[1, :2])  # scale 0
    assert not torch.equal(after[1, 2:], start[1, 2:]) and not torch.equal(after[2, :2], start[2, :2])  # 1, 0.1
