"""Studies (lenet/studies/): fine-tuning and forgetting, partial transfer, map rankings, resumable output, CLI."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet.core import checkpoint
from lenet import studies
from lenet.data.protocol import new_characters as default_targets
from lenet.config import LEVELS, TRANSFER_RECIPE
from lenet.data import load, to_net_input
from lenet.data.protocol import source_split
from lenet.grid.experiment import RunsFileError
from lenet.studies import criteria as C
from lenet.studies import finetune as FT
from lenet.studies import partial as P
from lenet.studies.common import shared_for, training_set
from lenet.core.train import fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    ds = load("synthetic")
    source = checkpoint.load(ROOT / "assets" / "source-synthetic")
    return ds, source, default_targets(ds, source.classes, 0)


def _params(model, layers):
    return {f"{l}.{p}": t.detach().clone() for l in layers for p, t in getattr(model, l).named_parameters()}


def test_frozen_arm_forgets_exactly_nothing_and_fine_tuning_forgets(setup):
    ds, source, targets = setup
    recipe = TRANSFER_RECIPE.replace(max_epochs=10)
    shared = shared_for(source, ds, targets, 0, recipe, heldout=True)
    train = training_set(ds, source, targets, 5, 0, 0)
    frozen = FT.run_one(shared, {"n": 5, "lr_mult": 0.0, "seed": 0, **train})
    tuned = FT.run_one(shared, {"n": 5, "lr_mult": 1.0, "seed": 0, **train})
    assert frozen["source_drop"] == 0.0 and frozen["source_acc"] == frozen["source_before"]
    assert frozen["source_before"] == pytest.approx(source.meta["heldout_acc"], abs=1e-6), \
        "forgetting is measured on the source net's own held-out characters"
    assert tuned["source_drop"] > 0, "training the shared levels at the full rate forgets something"
    assert tuned["source_before"] == frozen["source_before"]


def test_fine_tune_is_training_at_lr_times_lr_mult(setup):
    """The gradient scale equals an optimiser parameter group at lr * lr_mult, step for step."""
    ds, source, targets = setup
    from lenet.core.transfer import transfer
    train = training_set(ds, source, targets, 2, 0, 0)
    x, y = to_net_input(train["images"]), torch.from_numpy(train["labels"])
    codes = torch.randn(20, 20).sign()
    a, b = transfer(source.model, 3, seed=1), transfer(source.model, 3, seed=1)
    FT.fine_tune(a, 3, 0.1)
    b.requires_grad_(True)
    low = [p for l in LEVELS[:3] for p in getattr(b, l).parameters()]
    high = [p for l in ("s4", "c5", "f6") for p in getattr(b, l).parameters()]
    opt_a = torch.optim.SGD(a.parameters(), lr=0.01, momentum=0.9)
    opt_b = torch.optim.SGD([{"params": low, "lr": 0.001}, {"params": high}], lr=0.01, momentum=0.9)
    for i in range(0, len(x), 4):
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x[i:i + 4]), codes[y[i:i + 4]]).backward()
            opt.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-7, msg=name)
    assert not torch.equal(a.c1.weight, source.model.c1.weight), "the retained levels moved"


@pytest.mark.parametrize("level,kept", [("c3", [1, 4, 7, 15]), ("c1", [0, 5]), ("c5", list(range(0, 120, 3)))])
def test_partial_transfer_keeps_exactly_the_chosen_maps(setup, level, kept):
    ds, source, targets = setup
    train = training_set(ds, source, targets, 2, 0, 0)
    net = P.partial_net(source.model, level, kept, seed=3)
    below = LEVELS[:LEVELS.index(level)]
    fresh = _params(net, [level])
    fit(net, to_net_input(train["images"]), torch.from_numpy(train["labels"]), torch.randn(20, 20).sign(),
        TRANSFER_RECIPE.replace(max_epochs=3, target_train_acc=1.01))
    rows = C.map_rows(net, level, kept)
    released = C.map_rows(net, level, sorted(set(range(C.MAPS[level])) - set(kept)))
    for name, r in rows.items():
        got, src = getattr(net, level).get_parameter(name), getattr(source.model, level).get_parameter(name)
        assert torch.equal(got[r], src[r]), f"kept {level}.{name} rows changed"
        moved = got[released[name]] != fresh[f"{level}.{name}"][released[name]]
        assert moved.any(dim=tuple(range(1, moved.dim()))).all() if moved.dim() > 1 else moved.all(), \
            f"every released {level}.{name} row trained"
    for key, t in _params(source.model, below).items():
        assert torch.equal(t, _params(net, below)[key]), f"{key} below the level is frozen"
    whole = P.partial_net(source.model, level, range(C.MAPS[level]), seed=3)
    assert all(torch.equal(t, _params(source.model, [level])[k]) for k, t in _params(whole, [level]).items())


def test_every_criterion_ranks_every_map(setup):
    ds, source, targets = setup
    split = source_split(ds, source.classes, 400, 0, 0)
    rows = np.concatenate([np.flatnonzero(split.train.labels == c)[:5] for c in range(20)])
    x, y = to_net_input(split.train.images[rows]), torch.from_numpy(split.train.labels[rows])
    train = training_set(ds, source, targets, 1, 0, 0)
    for level, maps in C.MAPS.items():
        scores = {"saliency": C.saliency(source.model, x, y, source.codes, level),
                  "hessian": C.hessian(source.model, x, y, source.codes, level, probes=4),
                  "taylor": C.taylor(source.model, x, y, source.codes, level),
                  "mutual-info": C.mutual_info(source.model, to_net_input(train["images"]), train["labels"], level),
                  "random": C.random_scores(level, 0)}
        assert set(scores) == set(C.VARIANTS)
        assert (scores["saliency"] > 0).all(), "OBD's Gauss-Newton diagonal makes every saliency positive"
        for name, s in scores.items():
            assert len(s) == maps and np.isfinite(s).all(), (level, name)
            assert sorted(C.ranking(s)) == list(range(maps)), f"{name} ranks every {level} map once"
        assert scores["taylor"].max() > 0 and scores["mutual-info"].max() > 0
    s = np.array([3.0, 1.0, 2.0, 2.0])
    assert C.spearman(s, s) == pytest.approx(1) and C.spearman(s, -s) == pytest.approx(-1)
    assert C.ranking(s) == [0, 2, 3, 1]


def test_obd_saliency_is_the_gauss_newton_diagonal():
    """OBD's h_kk (LeCun et al. 1990): 2/(N D) sum over samples and outputs of (d output / d w_k)^2,
    against full Jacobians from torch.autograd.functional; positive, unlike the Hessian's diagonal."""
    from lenet.config import TANH_A, TANH_S
    from lenet.core.model import LeNet5
    model = LeNet5(seed=0)
    g = torch.Generator().manual_seed(0)
    x, y, codes = torch.randn(8, 1, 32, 32, generator=g), torch.arange(8) % 4, torch.randn(4, 20, generator=g).sign()
    w, b = model.c1.weight.detach(), model.c1.bias.detach()

    def outputs(w, b):
        h = TANH_A * torch.tanh(TANH_S * torch.nn.functional.conv2d(x, w, b))
        for name in ("s2", "c3", "s4", "c5", "f6"):
            h = TANH_A * torch.tanh(TANH_S * model.pre_activation(name, h))
        return h
    jw, jb = torch.autograd.functional.jacobian(outputs, (w, b))  # (8, 20, 6, 1, 5, 5), (8, 20, 6)
    scale = 2.0 / (8 * 20)
    exact = (0.5 * scale * (jw ** 2).sum((0, 1)) * w ** 2).flatten(1).sum(1) + 0.5 * scale * (jb ** 2).sum((0, 1)) * b ** 2
    got = C.saliency(model, x, y, codes, "c1", chunk=3)  # chunks that do not divide the batch
    assert np.allclose(got, exact.numpy(), rtol=1e-4, atol=0) and (got > 0).all()
    hess = C.hessian(model, x, y, codes, "c1", probes=200)
    assert not np.allclose(got, hess, rtol=0.1), "the named Hessian variant is another quantity"


def test_the_hessian_variant_matches_the_exact_diagonal_hessian():
    """Hutchinson's diagonal against the exact Hessian of the source loss (torch.autograd.functional)."""
    from lenet.config import TANH_A, TANH_S
    from lenet.core.model import LeNet5
    model = LeNet5(seed=0)
    g = torch.Generator().manual_seed(0)
    x, y, codes = torch.randn(8, 1, 32, 32, generator=g), torch.arange(8) % 4, torch.randn(4, 20, generator=g).sign()
    est = C.hessian(model, x, y, codes, "c1", probes=1000)

    def loss(theta):  # C1's 150 weights and 6 biases as one vector
        h = TANH_A * torch.tanh(TANH_S * torch.nn.functional.conv2d(x, theta[:150].view(6, 1, 5, 5), theta[150:]))
        for name in ("s2", "c3", "s4", "c5", "f6"):
            h = TANH_A * torch.tanh(TANH_S * model.pre_activation(name, h))
        return torch.nn.functional.mse_loss(h, codes[y])
    theta = torch.cat([model.c1.weight.detach().flatten(), model.c1.bias.detach()])
    h = torch.autograd.functional.hessian(loss, theta).diagonal()
    per_weight = 0.5 * h * theta ** 2
    exact = (per_weight[:150].view(6, 25).sum(1) + per_weight[150:]).numpy()
    assert np.corrcoef(est, exact)[0, 1] > 0.95, (est, exact)
    assert np.abs(est - exact).sum() < 0.2 * np.abs(exact).sum(), (est, exact)


def test_a_study_resumes_and_refuses_other_settings(setup, tmp_path):
    ds, source, targets = setup
    settings = P.Settings(fractions=(0.0, 0.5, 1.0), samples=(1,), trials=1, max_epochs=3, score_per_class=5,
                          probes=2)
    stop, seen = threading.Event(), []

    def on_summary(rows):
        seen.append(rows)
        stop.set()
    first = P.partial(settings, source, ds, targets, out_dir=tmp_path, workers=1, stop=stop, on_summary=on_summary)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert not meta["complete"] and 0 < meta["runs"] < meta["total"] and len(seen) == 1 and first  # one group
    lines = (tmp_path / "runs.csv").read_text().splitlines()
    progress = []
    rows = P.partial(settings, source, ds, targets, out_dir=tmp_path, workers=1,
                     progress=lambda d, t: progress.append((d, t)))
    assert progress[0][0] == meta["runs"] and progress[-1][0] == progress[-1][1] == meta["total"]
    assert (tmp_path / "runs.csv").read_text().splitlines()[:len(lines)] == lines, "finished runs kept in place"
    assert {r["criterion"] for r in rows} == set(C.CRITERIA)
    assert {r["kept_fraction"] for r in rows} == {0.0, 0.5, 1.0}
    for p in (0.0, 1.0):  # keeping none or all is the same run whatever the criterion
        assert len({r["target_acc"] for r in rows if r["kept_fraction"] == p}) == 1
    html = (tmp_path / "report.html").read_text()
    assert P.QUESTION.split(":")[0] in html and "plotly" in html and "Rank correlation" in html
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[0] == ",".join(P.SUMMARY_FIELDS) and len(summary) == len(rows) + 1
    with pytest.raises(RunsFileError, match="other settings"):
        P.partial(P.Settings(**{**settings.__dict__, "seed": 1}), source, ds, targets, out_dir=tmp_path, workers=1)
    with pytest.raises(RunsFileError, match="holds the study 'partial'"):
        FT.finetune(FT.Settings(levels=(5,), samples=(1,), lr_mults=(0.0,), trials=1, max_epochs=2), source, ds,
                    targets, out_dir=tmp_path, workers=1)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lenet", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_cli_study_finetune_quick(tmp_path):
    rc = _cli("study", "finetune", "--quick", "--json", "--data", "synthetic", "--out", tmp_path / "ft")
    assert rc.returncode == 0, rc.stderr
    out = json.loads(rc.stdout)
    assert set(out) == {"study", "out", "rows"} and out["study"] == "finetune"
    rows = out["rows"]
    assert all(list(r)[:6] == ["n", "k", "lr_mult", "target_acc", "source_acc", "source_drop"] for r in rows)
    assert {r["lr_mult"] for r in rows} >= {0.0, 1.0} and len({r["n"] for r in rows}) >= 2
    assert all(r["source_drop"] == 0.0 for r in rows if r["lr_mult"] == 0)
    assert any(r["source_drop"] != 0.0 for r in rows if r["lr_mult"] > 0)
    assert (tmp_path / "ft" / "report.html").exists() and "python -m lenet study finetune --quick" in \
        (tmp_path / "ft" / "report.html").read_text()


def test_cli_study_bad_input_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, msg in ((["study", "nope", "--out", tmp_path / "o"], "invalid choice"),
                      (["study", "partial", "--data", "synthetic", "--out", tmp_path / "file"], "not a folder"),
                      (["study", "partial", "--data", "sd19", "--out", tmp_path / "o"], "shipped source"),
                      (["study", "all", "--data", "synthetic", "--out", tmp_path / "o"], "needs --seeds")):
        rc = _cli(*args)
        assert rc.returncode == 2 and rc.stdout == "" and msg in rc.stderr and len(rc.stderr.splitlines()) == 1


def test_controls_end_to_end_and_the_in_domain_net_never_sees_the_test_set(setup, tmp_path):
    from lenet.studies import controls as CT
    ds, source, targets = setup
    split = CT.in_domain_split(ds, targets, 0, 30)
    assert split.classes == targets and len(split.train) == 30 * len(targets)
    test = {im.tobytes() for im in shared_for(source, ds, targets, 0, TRANSFER_RECIPE)["test_images"]}
    assert not test & {im.tobytes() for im in split.train.images}, "the in-domain net trains outside the grid's test set"
    settings = CT.Settings(levels=(0, 5), samples=(1,), trials=1, max_epochs=3, in_domain_per_class=10)
    rows = CT.controls(settings, source, ds, targets, out_dir=tmp_path, workers=1)
    got = {(r["n"], r["arm"]) for r in rows}
    assert got == {(0, "AnB"), (0, "nearest-centroid"), (5, "AnB"), (5, "random-frozen"), (5, "random-scaled"),
                   (5, "in-domain"), (5, "nearest-centroid")}
    assert (tmp_path / "in-domain-source" / "model.safetensors").exists()
    nc = {r["n"]: r["target_acc"] for r in rows if r["arm"] == "nearest-centroid"}
    assert nc[5] > 0.2 and nc[0] > 0.1, "a nearest-centroid readout needs no training to beat chance (5%)"
    again = CT.controls(settings, source, ds, targets, out_dir=tmp_path, workers=1)
    assert again == rows, "a finished study reopens to the same rows"


def test_source_classes_train_source_nets_on_the_right_classes(setup, tmp_path):
    """Nested, twin-free sets in several orders, the same characters in both arms at each S, and every
    source net trained for the same budget of SGD steps."""
    from lenet.data.twins import twins_of
    from lenet.studies import source_classes as SC
    ds, source, targets = setup
    settings = SC.Settings(class_counts=(2, 5, 100), per_class=20, fixed_total=100, levels=(0, 5), samples=(1,),
                           trials=2, orders=2, max_epochs=2, source_steps=40)
    sets = SC.source_sets(settings, ds, targets)
    largest = len(SC.nested_order(settings, ds, targets, 0))  # S = 100 is more than the pool holds
    assert sorted(sets) == sorted((a, S, o) for a in SC.ARMS for S in (2, 5, largest) for o in (0, 1))
    for (arm, S, o), (chars, per) in sets.items():
        assert len(chars) == S and not set(chars) & set(targets)
        assert not any(twins_of(c) & set(targets) for c in chars), "no twin of a new character"
        assert per == (20 if arm == "per-class" else 100 // S)
        assert chars == sets["per-class", S, o][0], "both arms learn the same characters at each S"
    for o in (0, 1):
        assert set(sets["per-class", 2, o][0]) <= set(sets["per-class", 5, o][0]) <= set(sets["per-class", largest, o][0])
    assert sets["per-class", 5, 0][0] != sets["per-class", 5, 1][0], "the orders differ"
    settings = SC.Settings(class_counts=(2,), per_class=20, fixed_total=100, levels=(0, 5), samples=(1,), trials=2,
                           orders=2, max_epochs=2, source_steps=40)
    rows = SC.source_classes(settings, source, ds, targets, out_dir=tmp_path, workers=1)
    made = SC.source_sets(settings, ds, targets)
    for arm, o in ((a, o) for a in SC.ARMS for o in (0, 1)):
        net = checkpoint.load(tmp_path / "sources" / f"{arm}-2-{o}")
        assert net.classes == made[arm, 2, o][0]
        assert net.meta["train_per_class"] == (20 if arm == "per-class" else 50)
    nets = list(csv.DictReader(open(tmp_path / SC.SOURCES_CSV)))
    assert len(nets) == 4 and all(40 <= int(r["steps"]) < 40 + 50 / 16 + 1 for r in nets), "one budget of steps"
    assert {r["epochs"] for r in nets if r["arm"] == "per-class"} != {r["epochs"] for r in nets if r["arm"] != "per-class"}
    assert {(r["arm"], r["S"], r["n"]) for r in rows} == {("none", 0, 0)} | {(a, 2, 5) for a in SC.ARMS}
    runs = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert {(r["trial"], r["order"]) for r in runs if r["arm"] != "none"} == {("0", "0"), ("1", "1")}


def test_class_choice_scores_each_source_set_by_proxy_and_by_transfer(setup, tmp_path):
    from lenet.studies import class_choice as CC
    ds, source, targets = setup
    settings = CC.Settings(sets=3, set_size=3, per_class=20, samples=(1,), trials=1, max_epochs=2, source_max_epochs=1)
    sets = CC.source_sets(settings, ds, targets)
    assert len(sets) == 3 and all(len(s) == 3 and not set(s) & set(targets) for s in sets)
    rows = CC.class_choice(settings, source, ds, targets, out_dir=tmp_path, workers=1)
    assert [r["classes"] for r in rows] == ["".join(s) for s in sets]
    assert all(0 <= r["proxy_acc"] <= 1 and 0 <= r["target_acc"] <= 1 for r in rows)
    for i, s in enumerate(sets):
        assert checkpoint.load(tmp_path / "sources" / f"set-{i}").classes == s
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert set(meta["agreement"]["1"]) >= {"spearman", "best", "median", "worst"}


def test_partial_compares_each_criterion_with_random_trial_by_trial():
    """A criterion's map sets differ from trial to trial, and its summary row carries the paired
    difference from random with a 95% interval that excludes 0 only when the data say so."""
    settings = P.Settings(criteria=("saliency", "random"), fractions=(0.5,), samples=(5,), trials=4)
    chosen = {(c, 0.5, 5, t): f"{c}{t}" for c in settings.criteria for t in range(4)}
    better = [0.60, 0.62, 0.61, 0.63]
    rows = [{"k": 5, "trial": t, "kept": f"saliency{t}", "target_acc": a} for t, a in enumerate(better)]
    gains = [0.04, 0.06, 0.05, 0.05]
    rows += [{"k": 5, "trial": t, "kept": f"random{t}", "target_acc": a - g} for t, (a, g) in enumerate(zip(better, gains))]
    sal = next(r for r in P.summarize(rows, settings, chosen) if r["criterion"] == "saliency")
    assert sal["vs_random"] == pytest.approx(0.05) and 0 < sal["vs_random_low"] < 0.05 < sal["vs_random_high"] < 0.1
    noisy = [{**r, "target_acc": r["target_acc"] + (0.1 if r["trial"] % 2 else -0.1)} if r["kept"].startswith("random")
             else r for r in rows]
    sal = next(r for r in P.summarize(noisy, settings, chosen) if r["criterion"] == "saliency")
    assert sal["vs_random_low"] < 0 < sal["vs_random_high"], "a difference within the noise has an interval across 0"


def test_source_task_criteria_rank_each_trial_on_its_own_resample(setup):
    ds, source, targets = setup
    settings = P.Settings(criteria=("saliency", "taylor"), samples=(1,), trials=2, score_per_class=5)
    sets = {(1, t): training_set(ds, source, targets, 1, t, 0) for t in range(2)}
    scores = P.score_maps(settings, source, ds, sets)
    for c in settings.criteria:
        assert scores[f"{c} 1 0"] != scores[f"{c} 1 1"], f"{c}: one map set per trial, not one for all"


def test_random_scaled_levels_have_the_source_nets_scale_and_none_of_its_knowledge(setup):
    from lenet.core.model import LeNet5
    from lenet.studies import controls as CT
    _, source, _ = setup
    net = CT.scale_like(LeNet5(seed=7), source.model, 3)
    for name in ("c1", "s2", "c3"):
        for pname, p in getattr(net, name).named_parameters():
            q = getattr(source.model, name).get_parameter(pname)
            p, q = p.detach(), q.detach()
            assert float(p.mean()) == pytest.approx(float(q.mean()), abs=1e-5)
            assert float(p.std()) == pytest.approx(float(q.std()), rel=1e-4)
            assert not torch.equal(p, q)
            if p.numel() >= 150:  # C1's and C3's kernels: unrelated to the source's
                assert abs(np.corrcoef(p.flatten(), q.flatten())[0, 1]) < 0.2, "no knowledge copied"
    assert torch.equal(net.s4.coef, LeNet5(seed=7).s4.coef), "levels above n keep their initialisation"


def test_pool_gives_each_cell_its_mean_range_and_interval_over_the_splits():
    from lenet.studies.splits import pool
    by_seed = {0: [{"k": 1, "acc": 0.50}, {"k": 5, "acc": 0.7}], 1: [{"k": 1, "acc": 0.56}],
               2: [{"k": 1, "acc": 0.53}, {"k": 5, "acc": 0.9}]}
    rows = {r["k"]: r for r in pool(by_seed, ("k",), ("acc",))}
    r = rows[1]
    assert r["splits"] == 3 and r["acc"] == pytest.approx(0.53) and (r["acc_min"], r["acc_max"]) == (0.50, 0.56)
    assert 0.50 <= r["acc_low"] < r["acc"] < r["acc_high"] <= 0.56
    assert rows[5]["splits"] == 2 and rows[5]["acc"] == pytest.approx(0.8)


def test_cli_study_on_two_splits_writes_each_split_and_the_rows_across_them(tmp_path):
    """study partial --quick --seeds 0 1: each split its own twin-free source and new characters (its own
    source net in OUT/sources/seed-S, as reproduce trains it; here tiny ones so the test need not train
    full ones), splits.csv with intervals, and tables --write words the answer."""
    from lenet.config import Recipe
    from lenet.core.net import train_source
    from lenet.data.protocol import default_class_split
    from lenet.data.twins import twin_pairs
    from lenet.grid.experiment import source_fingerprint
    out = tmp_path / "st"
    ds = load("synthetic")
    for seed in (0, 1):  # each split trains its own net, as reproduce does; here tiny ones, trained before
        tiny, _ = train_source(source_split(ds, default_class_split(ds, seed)[0], 30, 5), Recipe(max_epochs=1, seed=seed))
        checkpoint.save(tiny, out / "sources" / f"seed-{seed}")
    rc = _cli("study", "partial", "--quick", "--seeds", "0", "1", "--json", "--data", "synthetic", "--out", out)
    assert rc.returncode == 0, rc.stderr
    res = json.loads(rc.stdout)
    for seed in (0, 1):
        meta = json.loads((out / "partial" / f"seed-{seed}" / "meta.json").read_text())["settings"]
        assert meta["source_classes"] == default_class_split(ds, seed)[0] and meta["seed"] == seed
        assert not twin_pairs(meta["source_classes"], meta["target_classes"])
    for seed in (0, 1):
        used = json.loads((out / "partial" / f"seed-{seed}" / "meta.json").read_text())["settings"]["source_sha256"]
        own = source_fingerprint(checkpoint.load(out / "sources" / f"seed-{seed}"))
        assert used == own, "the split's own net, not the shipped one"
    rows = list(csv.DictReader(open(out / "partial" / "splits.csv")))
    assert {r["criterion"] for r in rows} == {"saliency", "taylor", "mutual-info", "random"}
    assert all(float(r["target_acc_min"]) <= float(r["target_acc"]) <= float(r["target_acc_max"]) for r in rows)
    assert rows and all(r["splits"] == "2" for r in rows) and len(rows) == len(res["studies"]["partial"]["rows"])
    assert {"target_acc_low", "target_acc_high", "vs_random_min", "vs_whole_max"} <= set(rows[0])
    assert json.loads((out / "partial" / "splits.json").read_text())["seeds"] == [0, 1]
    doc = tmp_path / "doc.md"
    doc.write_text("x\n<!-- studies: written by python -m lenet tables --write FILE, do not edit -->\n"
                   "<!-- studies: end -->\ny\n")
    rc = _cli("tables", "--studies", out, "--write", doc)
    assert rc.returncode == 0, rc.stderr
    text = doc.read_text()
    assert "#### partial" in text and "A partly transferred C3 beats the whole C3" in text and "2 class splits" in text
    assert text.startswith("x\n") and text.endswith("y\n")


def test_tables_write_refuses_a_file_without_a_block_and_leaves_it_alone(tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("my own notes\n")
    rc = _cli("tables", "--write", doc)
    assert rc.returncode == 2 and "no result block to rewrite" in rc.stderr and "studies-line" in rc.stderr
    assert doc.read_text() == "my own notes\n"


def test_source_classes_preset_hundreds_takes_S_past_the_data_with_omniglot_characters(setup, tmp_path):
    """--preset hundreds: the pool adds the Omniglot background characters but none of a Latin-script
    alphabet (Latin, Greek), 15 of each with 5 held out; S = 200 is more than the data's 62 classes; the
    new characters stay the data's; the cross-split rows keep S = 100 and 200 as they are."""
    from lenet.data.omniglot import alphabet_of, find_omniglot
    from lenet.studies import source_classes as SC
    if find_omniglot() is None:
        pytest.skip("no Omniglot background archives (assets/omniglot or LENET_OMNIGLOT_DIR)")
    ds, source, targets = setup
    settings = studies.settings("source-classes", 0, preset="hundreds")
    assert settings.pool == "data+omniglot" and max(settings.class_counts) == 200 > len(ds.classes)
    pool = SC.source_pool(settings, ds)
    extra = pool.classes[len(ds.classes):]
    assert pool.classes[:len(ds.classes)] == ds.classes and np.array_equal(pool.images[:len(ds)], ds.images)
    assert len(extra) == 192 and not {alphabet_of(c) for c in extra} & {"Latin", "Greek"}
    assert set(pool.counts()[c] for c in extra) == {20}, "every Omniglot character: its 20 drawers"
    sets = SC.source_sets(settings, pool, targets)
    for o in range(settings.orders):
        for arm, per in (("per-class", 15), ("fixed-total", 3)):
            chars, got = sets[arm, 200, o]
            assert len(chars) == 200 and got == per and not set(chars) & set(targets)
        assert set(sets["per-class", 40, o][0]) <= set(sets["per-class", 100, o][0]) <= set(sets["per-class", 200, o][0])
    split = source_split(pool, sets["per-class", 200, 0][0], 15, settings.heldout_per_class)
    assert len(split.train) == 3000 and len(split.test) == 1000
    summary = [{"arm": "none", "S": 0, "n": 0, "k": 5, "target_acc": 0.5}] + \
        [{"arm": "per-class", "S": S, "n": 5, "k": 5, "target_acc": 0.6} for S in (33, 100, 200)]
    assert [r["S"] for r in SC.across_rows(summary, settings)] == [0, 200, 100, 200], "33: the pool's all, as 200"
    assert [r["S"] for r in SC.across_rows(summary)] == [0, 40, 40, 40], "the default counts stop at 40"
    assert "pool" not in SC.Settings().recorded() and SC.Settings.hundreds().recorded()["pool"] == "data+omniglot"
    shipped = ROOT / "assets" / "results-studies" / "source-classes" / "seed-0" / "meta.json"
    if shipped.exists():  # the folders made before `pool` existed still resume with the default settings
        old = json.loads(shipped.read_text())["settings"]
        assert {k: old[k] for k in SC.Settings().recorded()} == json.loads(json.dumps(SC.Settings().recorded()))
    for name, preset, words in (("source-classes", "nope", "its presets: hundreds"), ("finetune", "hundreds", "has none")):
        with pytest.raises(ValueError, match=words):
            studies.settings(name, 0, preset=preset)
    rc = _cli("study", "source-classes", "--quick", "--preset", "hundreds", "--data", "synthetic", "--out", tmp_path)
    assert rc.returncode == 0, rc.stderr
    nets = list(csv.DictReader(open(tmp_path / SC.SOURCES_CSV)))
    assert {(r["arm"], r["S"], r["per_class"]) for r in nets} == \
        {("per-class", "2", "15"), ("per-class", "100", "15"), ("fixed-total", "2", "300"), ("fixed-total", "100", "6")}
    big = next(r for r in nets if r["S"] == "100" and r["arm"] == "per-class")["classes"].split(" ")
    assert len(big) == 100 and any("/character" in c for c in big), "Omniglot names, space-separated"
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert "--preset hundreds" in meta["command"] and meta["settings"]["heldout_per_class"] == 5
    rc = _cli("study", "all", "--preset", "hundreds", "--seeds", "0", "--data", "synthetic", "--out", tmp_path / "x")
    assert rc.returncode == 2 and "name the study" in rc.stderr and not (tmp_path / "x").exists()


def test_the_hundreds_block_of_docs_studies_is_what_tables_writes_from_the_shipped_csvs():
    """docs/studies.md's studies-hundreds block is generated from assets/results-hundreds (three splits, S up to
    200 in both arms), not typed."""
    from lenet.grid.tables import begin
    from lenet.studies.tables import HUNDREDS, have_shipped, hundreds_markdown
    assert have_shipped("source-classes", HUNDREDS), "assets/results-hundreds ships (docs/studies.md says how)"
    block = hundreds_markdown()
    doc = (ROOT / "docs" / "studies.md").read_text()
    assert block in doc and block.startswith(begin("studies-hundreds"))
    assert "S=200 minus S=40" in block and "| per-class | 200 | 15 |" in block and "| fixed-total | 200 | 3 |" in block
    meta = json.loads((HUNDREDS / "source-classes" / "splits.json").read_text())
    assert meta["seeds"] == [0, 1, 2] and meta["preset"] == "hundreds" and meta["settings"]["pool"] == "data+omniglot"
