"""controls: how much of the transfer gain is knowledge, and how much is architecture.

Five arms per retained levels n and samples per class k, all scored on the grid's 1,000 test
characters with the grid's recipe and seeds (A: the source characters, B: the new ones):
  AnB               the paper's transfer, named as Yosinski, Clune, Bengio & Lipson (2014) name it:
                    the bottom n levels of the net trained on A, frozen; the rest trained on B
                    (n = 0: no transfer)
  random-frozen     the new net's own random bottom n levels, frozen at their initialisation:
                    the same architecture and trainable capacity with no knowledge in it
  random-scaled     random-frozen levels rescaled, parameter by parameter, to the mean and
                    spread of the source net's: no knowledge, but the transferred levels' scale,
                    so a collapse of random-frozen at large n is not just LeCun's initialisation
                    shrinking the signal level by level
  in-domain         the bottom n levels of a net trained on many samples of B itself (outside the
                    test set), frozen; the rest trained on the k samples. Not Yosinski's BnB, whose
                    upper levels retrain on the same data that trained the base net: this arm asks
                    what features learnt on the new characters themselves give at this k
  nearest-centroid  no training: each test character goes to the nearest class mean of the k
                    samples' frozen features at level n (n = 0: pixels)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lenet.core import checkpoint
from lenet import config
from lenet.config import LEVELS, Recipe
from lenet.data import to_net_input
from lenet.data.base import CharacterSet
from lenet.data.protocol import SEED_TEST, Split, class_key, relabel, rows_of
from lenet.grid.cells import TEST_PER_CLASS, Cell, run_seed
from lenet.report.figures import LAYOUT
from lenet.core.model import LeNet5
from lenet.core.readouts import centroid, features
from lenet.core.net import train_source
from lenet.core.transfer import check_levels, transfer
from lenet.studies.common import (
    Build, StudyDir, Table, capped, check_common, run_group, run_plain, shared_for, source_model, source_settings,
    training_set,
)
from lenet.report.study import study_report

NAME = "controls"
FUNCTION = "controls"
TITLE = "Controls: knowledge or architecture?"
QUESTION = ("How much of the gain from frozen transferred levels (AnB) is knowledge, and how much would any frozen "
            "levels of that shape give? Compared at each n and k: random frozen levels (as initialised, and rescaled "
            "to the source net's scale), levels of a net trained on the new characters themselves (in-domain), and a "
            "nearest-centroid readout with no training.")

ARMS = ("AnB", "random-frozen", "random-scaled", "in-domain", "nearest-centroid")
TABLE = Table(key=("arm", "n", "k", "trial"), result=("seed", "train_acc", "target_acc", "epochs", "seconds"),
              types=dict(arm=str, n=int, k=int, trial=int, seed=int, train_acc=float, target_acc=float, epochs=int,
                         seconds=float))
SUMMARY_FIELDS = ("n", "k", "arm", "target_acc", "target_acc_min", "target_acc_max", "runs")
ARM_COLOURS = {"AnB": "#1f77b4", "random-frozen": "#7f7f7f", "random-scaled": "#bcbd22", "in-domain": "#2ca02c",
               "nearest-centroid": "#ff7f0e"}
IN_DOMAIN_PURPOSE = 4  # mixed into the seed of the in-domain net's sample draw (protocol.py uses 1-3)
IN_DOMAIN_DIR = "in-domain-source"


@dataclass(frozen=True)
class Settings:
    levels: tuple = (0, 1, 2, 3, 4, 5)   # retained levels n (at n = 0 only AnB and nearest-centroid run)
    samples: tuple = (1, 5, 20)
    arms: tuple = ARMS
    trials: int = config.PAPER_TRIALS        # the paper's 5 trials per cell
    seed: int = 0
    max_epochs: int | None = None        # None: the transfer recipe's cap
    in_domain_per_class: int = 400       # the in-domain net's samples per new character (fewer if the data has fewer)
    in_domain_max_epochs: int | None = None  # None: the source recipe's cap

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(levels=(3, 5), samples=(5,), trials=1, seed=seed, max_epochs=30, in_domain_per_class=60,
                   in_domain_max_epochs=8)

    def check(self) -> "Settings":
        for n in self.levels:
            check_levels(n)
        unknown = [a for a in self.arms if a not in ARMS]
        if not self.arms or unknown:
            raise ValueError(f"arms must be some of {', '.join(ARMS)} (got {list(self.arms)})")
        check_common(self.samples, {"trials": self.trials, "in_domain_per_class": self.in_domain_per_class},
                     {"max_epochs": self.max_epochs, "in_domain_max_epochs": self.in_domain_max_epochs})
        return self

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)

    def in_domain_recipe(self) -> Recipe:
        return capped(config.SOURCE_RECIPE.replace(seed=self.seed), self.in_domain_max_epochs)


def in_domain_split(ds: CharacterSet, targets, seed: int, per_class: int) -> Split:
    """The new characters' samples outside the grid's fixed test set (drawn as transfer_split draws it),
    up to per_class of each, to train the in-domain net; its test set is the grid's."""
    train, test = [], []
    for c in targets:
        rows = np.random.default_rng([seed, SEED_TEST, class_key(c)]).permutation(rows_of(ds, c))
        test.append(np.sort(rows[:TEST_PER_CLASS]))
        train.append(np.random.default_rng([seed, IN_DOMAIN_PURPOSE, class_key(c)]).permutation(rows[TEST_PER_CLASS:])[:per_class])
    per = min(len(r) for r in train)
    return Split(relabel(ds, [r[:per] for r in train], targets), relabel(ds, test, targets), list(targets))


def in_domain_net(ds, targets, settings: Settings, out: Path | None, log):
    """The in-domain net (trained once; kept in OUT/in-domain-source so a resumed study reuses it)."""
    where = out / IN_DOMAIN_DIR if out is not None else None
    if where is not None and (where / checkpoint.WEIGHTS).exists():
        return checkpoint.load(where)
    split = in_domain_split(ds, targets, settings.seed, settings.in_domain_per_class)
    log(f"training the in-domain net on the new characters {''.join(targets)} x {len(split.train) // len(targets)}")
    net, _ = train_source(split, settings.in_domain_recipe())
    if where is not None:
        checkpoint.save(net, where)
    return net


def build(shared: dict, task: dict):
    """The run's net (its frozen levels: the source's, random, or the in-domain net's), or, for the
    nearest-centroid arm, its finished row (no training)."""
    n, arm, seed = task["n"], task["arm"], task["seed"]
    if arm == "nearest-centroid":
        x, y = to_net_input(task["images"]), torch.from_numpy(task["labels"])
        xt, yt = to_net_input(shared["test_images"]), torch.from_numpy(shared["test_labels"])
        model = source_model(shared)
        return dict(train_acc=nearest_centroid(model, n, x, y, x, y), target_acc=nearest_centroid(model, n, x, y, xt, yt),
                    epochs=0)
    if arm in ("random-frozen", "random-scaled"):
        net = LeNet5(n_outputs=shared["n_outputs"], seed=seed)
        if arm == "random-scaled":
            scale_like(net, source_model(shared), n)
        return Build(net, n)
    src = source_model(shared) if arm == "AnB" else source_model({**shared, "source_state": shared["in_domain"]})
    return Build(transfer(src, n, seed=seed), n)


def run_one(shared: dict, task: dict) -> dict:
    return run_plain({**shared, "study": NAME}, task)


@torch.no_grad()
def scale_like(net: LeNet5, source: LeNet5, n: int) -> LeNet5:
    """Rescale each parameter tensor of net's bottom n levels (in place) to the mean and standard
    deviation of the source net's same tensor: random weights at the transferred weights' scale."""
    for name in LEVELS[:n]:
        mine, theirs = getattr(net, name), getattr(source, name)
        for pname, p in mine.named_parameters():
            q = theirs.get_parameter(pname)
            spread = p.std() if p.numel() > 1 else p.new_tensor(0.0)
            z = (p - p.mean()) / spread if spread > 0 else torch.zeros_like(p)
            p.copy_(z * (q.std() if q.numel() > 1 else 0.0) + q.mean())
    return net


@torch.no_grad()
def nearest_centroid(model: LeNet5, n: int, x, y, xt, yt) -> float:
    """Accuracy of the nearest class mean of the level-n features (lenet.core.readouts' centroid; no training)."""
    return float((centroid(features(model, x, n), y, features(model, xt, n)) == yt).float().mean())


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["n"], r["k"], r["arm"]), []).append(r["target_acc"])
    order = {a: i for i, a in enumerate(ARMS)}
    return [{"n": n, "k": k, "arm": a, "target_acc": float(np.mean(v)), "target_acc_min": float(min(v)),
             "target_acc_max": float(max(v)), "runs": len(v)}
            for (n, k, a), v in sorted(groups.items(), key=lambda i: (i[0][1], i[0][0], order[i[0][2]]))]


ACROSS = (("n", "k", "arm"), ("target_acc", "vs_AnB"))


def across_rows(summary: list[dict], settings: Settings | None = None) -> list[dict]:
    """Summary rows with `vs_AnB`: test accuracy minus the transferred levels' (same n, k, trials)."""
    anb = {(r["n"], r["k"]): r["target_acc"] for r in summary if r["arm"] == "AnB"}
    return [dict(r, vs_AnB=r["target_acc"] - anb.get((r["n"], r["k"]), float("nan"))) for r in summary]


def figures(summary: list[dict]) -> list[go.Figure]:
    ks = sorted({r["k"] for r in summary}) or [0]
    fig = make_subplots(rows=1, cols=len(ks), subplot_titles=[f"k = {k}" for k in ks], shared_yaxes=True)
    for i, k in enumerate(ks):
        for a in ARMS:
            rs = sorted((r for r in summary if r["k"] == k and r["arm"] == a), key=lambda r: r["n"])
            if rs:
                fig.add_trace(go.Scatter(x=[r["n"] for r in rs], y=[r["target_acc"] for r in rs], mode="lines+markers",
                                         name=a, legendgroup=a, showlegend=i == 0, line=dict(color=ARM_COLOURS[a])),
                              1, i + 1)
    fig.update_layout(title="Accuracy vs. retained levels n:<br>AnB, random, in-domain, no training",
                      **LAYOUT)
    fig.update_layout(margin_t=95)  # room for the two-line title
    fig.update_xaxes(title_text="retained levels n", dtick=1)
    fig.update_yaxes(title_text="test accuracy", tickformat=".1~%", col=1)
    return [fig]


def controls(settings: Settings, source, ds, targets, *, out_dir=None, command: str = "", workers: int | None = None,
             ray: str | None = None, stop=None, progress=None, on_summary=None, log=None,
             plain: bool = False) -> list[dict]:
    """Every (arm, n, k, trial) run; the summary rows (n, k, arm, target_acc mean/min/max, runs)."""
    settings.check()
    log = log or (lambda msg: None)
    recipe = settings.recipe()
    meta_settings = {**asdict(settings), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"}}
    sets = {(k, t): training_set(ds, source, targets, k, t, settings.seed)
            for k in settings.samples for t in range(settings.trials)}
    tasks = [{"arm": a, "n": n, "k": k, "trial": t, "seed": run_seed(settings.seed, Cell(n, k, t)), **sets[k, t]}
             for t in range(settings.trials) for k in settings.samples for n in settings.levels for a in settings.arms
             if n > 0 or a in ("AnB", "nearest-centroid")]
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        shared = {**shared_for(source, ds, targets, settings.seed, recipe), "study": NAME}
        if "in-domain" in settings.arms:
            own = in_domain_net(ds, targets, settings, sd.out, log)
            shared["in_domain"] = {k: v.detach().clone() for k, v in own.model.state_dict().items()}
        meta = {"question": QUESTION, "command": command}
        if "in-domain" in settings.arms:
            meta["in_domain_source"] = {"train_acc": own.meta.get("train_acc"),
                                        "per_class": own.meta.get("train_per_class"), "epochs": own.meta.get("epochs")}
        costs = [0.01 if t["arm"] == "nearest-centroid" else t["k"] * (1.0 if t["n"] < 3 else 0.2) for t in tasks]
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta, costs=costs,
                      group=None if plain else (lambda t: (t["n"], t["arm"] in ("AnB", "in-domain"))),
                      workers=workers, ray=ray, stop=stop,
                      progress=progress, log=log, on_summary=(summarize, on_summary) if on_summary else None)
        summary = summarize(rows)
        sd.finish(SUMMARY_FIELDS, summary, study_report(TITLE, QUESTION, command, figures(summary), summary,
                                                        SUMMARY_FIELDS, rows, TABLE.fields, meta), meta)
    return summary
