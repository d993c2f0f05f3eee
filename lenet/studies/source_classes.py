"""source-classes: how the transfer trade-off moves with the number of source classes S.

The paper: "What remains to be investigated is how quickly this trade-off changes as the
number of classes that contribute to knowledge transfer increases." Source nets learn S
characters (disjoint from the 20 new ones, nested: the S = 5 characters include the S = 2
ones), in two arms: `per-class` (per_class samples of each, the paper's 400, so more classes
also means more images) and `fixed-total` (fixed_total images in all, fixed_total / S of
each, so only the number of classes changes). Each source net is trained with the source
recipe (lenet.config.SOURCE_RECIPE) and kept in OUT/sources/; then every (n, k, trial)
transfer run. n = 0 transfers nothing, so it runs once per (k, trial) as the reference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lenet.core import checkpoint
from lenet import config
from lenet.config import Recipe
from lenet.data.protocol import source_split
from lenet.grid.cells import Cell, run_seed
from lenet.report.figures import LAYOUT, k_colour
from lenet.core.model import LeNet5
from lenet.core.net import Net, train_source
from lenet.core.transfer import check_levels, transfer
from lenet.studies.common import (
    SOURCE_HELDOUT_PER_CLASS, Build, StudyDir, Table, capped, check_common, run_group, run_plain, shared_for,
    source_model, source_settings, training_set,
)
from lenet.studies.runner import run_tasks
from lenet.report.study import study_report

NAME = "source-classes"
FUNCTION = "source_classes"
TITLE = "How many source classes?"
QUESTION = ("The paper left open how the trade-off between transferred knowledge and net capacity changes as "
            "the source net learns more classes. Source nets on S = 2 ... 40 characters (400 of each, and a "
            "second arm with 8,000 images in all) are transferred at n = 0, 3, 4, 5 with k = 1, 5, 20 samples.")
ARMS = ("per-class", "fixed-total")
TABLE = Table(key=("arm", "S", "n", "k", "trial"), result=("seed", "train_acc", "target_acc", "epochs", "seconds"),
              types=dict(arm=str, S=int, n=int, k=int, trial=int, seed=int, train_acc=float, target_acc=float,
                         epochs=int, seconds=float))
SUMMARY_FIELDS = ("arm", "S", "n", "k", "target_acc", "target_acc_min", "target_acc_max", "runs")
NONE = "none"  # the arm of the n = 0 reference runs (S = 0)


@dataclass(frozen=True)
class Settings:
    class_counts: tuple = (2, 5, 10, 20, 40)  # S; too large ones are replaced by the largest the data allows
    per_class: int = 400                      # samples per source character, arm per-class
    fixed_total: int = 8000                   # source images in all, arm fixed-total
    levels: tuple = (0, 3, 4, 5)
    samples: tuple = (1, 5, 20)
    trials: int = config.PAPER_TRIALS        # the paper's 5 trials per cell
    seed: int = 0
    max_epochs: int | None = None             # transfer runs; None: the transfer recipe's cap
    source_max_epochs: int | None = None      # source nets; None: the source recipe's cap

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(class_counts=(2, 5), per_class=100, fixed_total=600, levels=(0, 5), samples=(5,), trials=1,
                   seed=seed, max_epochs=30, source_max_epochs=8)

    def check(self) -> "Settings":
        for n in self.levels:
            check_levels(n)
        if not self.class_counts or any(not isinstance(s, int) or s < 2 for s in self.class_counts):
            raise ValueError(f"source class counts S must be integers >= 2 (got {self.class_counts})")
        check_common(self.samples, {"per_class": self.per_class, "fixed_total": self.fixed_total, "trials": self.trials},
                     {"max_epochs": self.max_epochs, "source_max_epochs": self.source_max_epochs})
        return self

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)

    def source_recipe(self) -> Recipe:
        return capped(config.SOURCE_RECIPE.replace(seed=self.seed), self.source_max_epochs)


def source_sets(settings: Settings, ds, targets) -> dict[tuple[str, int], tuple[list[str], int]]:
    """(arm, S) -> (the S source characters, samples of each), nested in one seeded order of the characters
    that are not new; an S the data cannot supply is replaced by the largest it can (or dropped)."""
    counts = ds.counts()
    order = [c for c in np.random.default_rng([settings.seed, 5]).permutation(ds.classes).tolist() if c not in targets]
    out = {}
    for arm in ARMS:
        wanted = sorted(set(settings.class_counts))
        for S in wanted:
            per = settings.per_class if arm == "per-class" else settings.fixed_total // S
            rich = [c for c in order if counts[c] >= per + SOURCE_HELDOUT_PER_CLASS]
            s = min(S, len(rich))
            if s >= 2 and (arm, s) not in out:
                out[arm, s] = ([c for c in ds.classes if c in set(rich[:s])], per if arm == "per-class"
                               else settings.fixed_total // s)
    return out


def train_one(shared: dict, task: dict) -> dict:
    """One source net (on a worker) from its split: its weights, codes and meta as plain data."""
    net, _ = train_source(task["split"], Recipe.from_dict(shared["recipe"]))
    # numpy, not tensors: torch sends tensors between processes by file descriptor, gone once the worker ends
    return {"state": {k: v.numpy().copy() for k, v in net.model.state_dict().items()}, "codes": net.codes.numpy().copy(),
            "meta": net.meta}


def build(shared: dict, task: dict) -> Build:
    src = source_model({**shared, "source_state": shared["sources"][task["source"]]} if task["n"] else shared)
    return Build(transfer(src, task["n"], seed=task["seed"]), task["n"])


def run_one(shared: dict, task: dict) -> dict:
    return run_plain({**shared, "study": NAME}, task)


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["arm"], r["S"], r["n"], r["k"]), []).append(r["target_acc"])
    return [{"arm": a, "S": S, "n": n, "k": k, "target_acc": float(np.mean(v)), "target_acc_min": float(min(v)),
             "target_acc_max": float(max(v)), "runs": len(v)}
            for (a, S, n, k), v in sorted(groups.items(), key=lambda i: (i[0][3], i[0][0], i[0][2], i[0][1]))]


ACROSS = (("arm", "S", "n", "k"), ("target_acc", "vs_none"))


def across_rows(summary: list[dict]) -> list[dict]:
    """Summary rows with `vs_none`: test accuracy minus no transfer's (n = 0, same k and trials)."""
    none = {r["k"]: r["target_acc"] for r in summary if r["arm"] == NONE}
    return [dict(r, vs_none=r["target_acc"] - none.get(r["k"], float("nan"))) for r in summary]


def figures(summary: list[dict]) -> list[go.Figure]:
    """Test accuracy vs S, one panel per arm, one line per (n, k); n = 0 as a flat reference."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"{a}" for a in ARMS], shared_yaxes=True)
    Ss = sorted({r["S"] for r in summary if r["arm"] != NONE}) or [2]
    dashes = {0: "dot", 3: "dash", 4: "dashdot", 5: "solid"}
    for col, arm in enumerate(ARMS, start=1):
        for (n, k) in sorted({(r["n"], r["k"]) for r in summary if r["arm"] == arm}):
            rs = sorted((r for r in summary if r["arm"] == arm and r["n"] == n and r["k"] == k), key=lambda r: r["S"])
            fig.add_trace(go.Scatter(x=[r["S"] for r in rs], y=[r["target_acc"] for r in rs], mode="lines+markers",
                                     name=f"n={n}, k={k}", legendgroup=f"{n}{k}", showlegend=col == 1,
                                     line=dict(color=k_colour(k), dash=dashes.get(n, "solid"))), 1, col)
        for r in (r for r in summary if r["arm"] == NONE):
            fig.add_trace(go.Scatter(x=[Ss[0], Ss[-1]], y=[r["target_acc"]] * 2, mode="lines", name=f"n=0, k={r['k']}",
                                     legendgroup=f"0{r['k']}", showlegend=col == 1,
                                     line=dict(color=k_colour(r["k"]), dash="dot")), 1, col)
    fig.update_layout(title="Test accuracy vs. the number of source classes S", **LAYOUT)
    fig.update_xaxes(title_text="source classes S", type="log")
    fig.update_yaxes(title_text="test accuracy", tickformat=".1~%", col=1)
    return [fig]


def source_classes(settings: Settings, source, ds, targets, *, out_dir=None, command: str = "",
                   workers: int | None = None, ray: str | None = None, stop=None, progress=None, on_summary=None, log=None,
                   plain: bool = False) -> list[dict]:
    """Source nets for every (arm, S), then every transfer run; the summary rows (arm, S, n, k, target_acc...).
    `source` only fixes the new characters' test draw; the study trains its own source nets."""
    settings.check()
    log = log or (lambda msg: None)
    recipe, src_recipe = settings.recipe(), settings.source_recipe()
    sets = source_sets(settings, ds, targets)
    meta_settings = {**asdict(settings), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"},
                     "source_recipe": src_recipe.to_dict(),
                     "source_sets": {f"{a} {S}": ["".join(c), per] for (a, S), (c, per) in sets.items()}}
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        nets = {}
        for (arm, S), (chars, per) in sets.items():
            where = sd.out / "sources" / f"{arm}-{S}" if sd.out is not None else None
            if where is not None and (where / checkpoint.WEIGHTS).exists():
                nets[arm, S] = checkpoint.load(where).model.state_dict()
        todo = [key for key in sets if key not in nets]
        if todo:
            log(f"training {len(todo)} source nets: " + ", ".join(f"{a} S={S} x {sets[a, S][1]}" for a, S in todo))
            tasks = [{"split": source_split(ds, sets[key][0], sets[key][1], SOURCE_HELDOUT_PER_CLASS, settings.seed)}
                     for key in todo]
            for i, res in run_tasks(train_one, {"recipe": src_recipe.to_dict()}, tasks,
                                    costs=[len(t["split"].train) for t in tasks], workers=workers, ray=ray, stop=stop):
                codes = torch.from_numpy(res["codes"])
                model = LeNet5(n_outputs=codes.shape[1])
                model.load_state_dict({k: torch.from_numpy(v) for k, v in res["state"].items()})
                if sd.out is not None:
                    checkpoint.save(Net(model, tasks[i]["split"].classes, codes, res["meta"]),
                                    sd.out / "sources" / "{}-{}".format(*todo[i]))
                nets[todo[i]] = model.state_dict()
                log(f"source net {todo[i][0]} S={todo[i][1]}: train acc {res['meta']['train_acc']:.2%} "
                    f"in {res['meta']['epochs']} epochs")
            if stop is not None and stop.is_set():
                return []
        shared = {**shared_for(source, ds, targets, settings.seed, recipe), "study": NAME,
                  "sources": {f"{a} {S}": st for (a, S), st in nets.items()}}
        train = {(k, t): training_set(ds, source, targets, k, t, settings.seed)
                 for k in settings.samples for t in range(settings.trials)}
        tasks = []
        for t in range(settings.trials):
            for k in settings.samples:
                for n in settings.levels:
                    keys = [(NONE, 0)] if n == 0 else sorted(sets)
                    tasks += [{"arm": a, "S": S, "n": n, "k": k, "trial": t, "source": f"{a} {S}",
                               "seed": run_seed(settings.seed, Cell(n, k, t)), **train[k, t]} for a, S in keys]
        meta = {"question": QUESTION, "command": command}
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta,
                      costs=[t["k"] * (1.0 if t["n"] == 0 else 0.15) for t in tasks],
                      group=None if plain else (lambda t: t["n"]), workers=workers, ray=ray, stop=stop, progress=progress, log=log,
                      on_summary=(summarize, on_summary) if on_summary else None)
        summary = summarize(rows)
        sd.finish(SUMMARY_FIELDS, summary, study_report(TITLE, QUESTION, command, figures(summary), summary,
                                                        SUMMARY_FIELDS, rows, TABLE.fields, meta), meta)
    return summary
