"""finetune: frozen vs fine-tuned transfer, and what the source net forgets.

The paper froze the retained levels so that nothing the source net knew was lost, and
guessed that letting them retrain "would undoubtedly give better results". Here the
retained levels n train at the learning rate times lr_mult (0 is the paper's frozen arm).
In Yosinski, Clune, Bengio & Lipson's (2014) names, lr_mult 0 is AnB (levels from the net
trained on A, the source characters, frozen while the rest learns B) and lr_mult > 0 is AnB+
(the same, fine-tuned), here at a chosen fraction of the learning rate.
Forgetting: the source and new net share the bottom n levels; after target training the
(possibly changed) shared levels go back under the source net's own upper levels, and
that net is scored on the source net's held-out characters.

A per-level learning rate is a gradient scale: SGD with momentum is linear in the
gradient (buf = m*buf + g; w -= lr*buf), so scaling a parameter's gradient by lr_mult is
exactly training it at lr * lr_mult. lr_mult 0 is not a zero scale but `transfer`'s
frozen levels, never handed to the optimiser, so the frozen arm is the grid's run.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import plotly.graph_objects as go
import torch

from lenet import config
from lenet.config import LEVELS, Recipe
from lenet.data import to_net_input
from lenet.grid.cells import Cell, run_seed
from lenet.grid.fast import LEVEL_COST
from lenet.report.figures import LAYOUT
from lenet.core.train import evaluate
from lenet.core.transfer import check_levels, transfer
from lenet.studies.common import (
    Build, StudyDir, Table, capped, check_common, run_group, run_plain, shared_for, source_model, source_settings,
    training_set, with_hooks,
)
from lenet.report.study import study_report

NAME = "finetune"
FUNCTION = "finetune"
TITLE = "Frozen vs fine-tuned transfer, and forgetting"
QUESTION = ("The paper froze the retained levels so the source net forgets nothing (AnB); how much does letting "
            "them retrain at lr x lr_mult (AnB+) gain on the new characters? And how much of the source net's own accuracy, "
            "with those shared levels put back under its upper levels, does that gain cost?")

TABLE = Table(key=("n", "k", "lr_mult", "trial"),
              result=("seed", "train_acc", "target_acc", "source_before", "source_acc", "source_drop", "epochs",
                      "seconds"),
              types=dict(n=int, k=int, lr_mult=float, trial=int, seed=int, train_acc=float, target_acc=float,
                         source_before=float, source_acc=float, source_drop=float, epochs=int, seconds=float))
SUMMARY_FIELDS = ("n", "k", "lr_mult", "target_acc", "source_acc", "source_drop", "runs")
N_COLOURS = {1: "#8c564b", 2: "#e377c2", 3: "#2ca02c", 4: "#1f77b4", 5: "#d62728"}


@dataclass(frozen=True)
class Settings:
    levels: tuple = (1, 2, 3, 4, 5)          # retained levels n
    samples: tuple = (1, 5, 20)              # samples per class k
    lr_mults: tuple = (0.0, 0.01, 0.1, 1.0)  # retained levels' lr = recipe lr x lr_mult; 0 = frozen (the paper)
    trials: int = config.PAPER_TRIALS        # the paper's 5 trials per cell
    seed: int = 0
    max_epochs: int | None = None            # None: the transfer recipe's cap

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(levels=(3, 5), samples=(5,), lr_mults=(0.0, 0.1, 1.0), trials=1, seed=seed, max_epochs=30)

    def check(self) -> "Settings":
        for n in self.levels:
            if check_levels(n) == 0:
                raise ValueError("finetune needs retained levels n >= 1 (n = 0 shares nothing to forget)")
        if not self.lr_mults or any(not 0 <= m <= 10 for m in self.lr_mults):
            raise ValueError(f"lr_mult values must be in [0, 10] (got {self.lr_mults})")
        check_common(self.samples, {"trials": self.trials}, {"max_epochs": self.max_epochs})
        return self

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)


def fine_tune_build(net: torch.nn.Module, n: int, lr_mult: float) -> Build:
    """A transferred net whose bottom n levels train at lr * lr_mult (a gradient scale, see above)."""
    scale = {f"{name}.{p}": torch.full_like(t, lr_mult) for name in LEVELS[:n]
             for p, t in getattr(net, name).named_parameters()} if lr_mult != 1.0 else None
    return Build(net, 0, scale)  # nothing is frozen: every level trains, the retained ones scaled


def fine_tune(net: torch.nn.Module, n: int, lr_mult: float) -> torch.nn.Module:
    """fine_tune_build on the plain path: the scales as gradient hooks."""
    return with_hooks(fine_tune_build(net, n, lr_mult))


def share_back(source: torch.nn.Module, net: torch.nn.Module, n: int) -> torch.nn.Module:
    """The source net with net's (possibly changed) bottom n levels under its own upper levels."""
    out = copy.deepcopy(source)
    for name in LEVELS[:n]:
        getattr(out, name).load_state_dict(getattr(net, name).state_dict())
    return out


def build(shared: dict, task: dict) -> Build:
    """The run's net: the grid's frozen transfer (lr_mult 0, AnB), or its retained levels fine-tuned (AnB+)."""
    n, mult = task["n"], task["lr_mult"]
    net = transfer(source_model(shared), n, seed=task["seed"])
    return fine_tune_build(net, n, mult) if mult > 0 else Build(net, n)


def after(shared: dict, task: dict, row: dict, net: torch.nn.Module) -> dict:
    """The trained net's shared levels back under the source net: what the source net forgets."""
    n = task["n"]
    source = source_model(shared)
    xs, ys = to_net_input(shared["heldout_images"]), torch.from_numpy(shared["heldout_labels"])
    before = evaluate(source, xs, ys, shared["source_codes"])[1]
    unchanged = all(torch.equal(getattr(net, l).get_parameter(p), getattr(source, l).get_parameter(p))
                    for l in LEVELS[:n] for p, _ in getattr(source, l).named_parameters())
    after_acc = before if unchanged else evaluate(share_back(source, net, n), xs, ys, shared["source_codes"])[1]
    return dict(row, source_before=float(before), source_acc=float(after_acc), source_drop=float(before - after_acc))


def run_one(shared: dict, task: dict) -> dict:
    """One transfer run through fit (the plain path): train, then score the new net and the source net."""
    return run_plain({**shared, "study": NAME}, task)


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["n"], r["k"], r["lr_mult"]), []).append(r)
    mean = lambda rs, f: sum(r[f] for r in rs) / len(rs)
    return [{"n": n, "k": k, "lr_mult": m, "target_acc": mean(rs, "target_acc"), "source_acc": mean(rs, "source_acc"),
             "source_drop": mean(rs, "source_drop"), "runs": len(rs)}
            for (n, k, m), rs in sorted(groups.items())]


ACROSS = (("n", "k", "lr_mult"), ("target_acc", "gain", "source_drop"))  # lenet.studies.splits


def across_rows(summary: list[dict], settings: Settings | None = None) -> list[dict]:
    """Summary rows with `gain`: test accuracy minus the frozen arm's (AnB+ minus AnB, same n, k, trials)."""
    frozen = {(r["n"], r["k"]): r["target_acc"] for r in summary if r["lr_mult"] == 0}
    return [dict(r, gain=r["target_acc"] - frozen.get((r["n"], r["k"]), math.nan)) for r in summary]


def figures(summary: list[dict]) -> list[go.Figure]:
    """The Pareto view (target gain over the frozen arm vs source drop), and target accuracy per lr_mult."""
    frozen = {(r["n"], r["k"]): r["target_acc"] for r in summary if r["lr_mult"] == 0}
    pareto, acc = go.Figure(), go.Figure()
    dashes = ("solid", "dash", "dot", "dashdot", "longdash")
    ks = sorted({r["k"] for r in summary})
    for n in sorted({r["n"] for r in summary}):
        for k in ks:
            rs = sorted((r for r in summary if r["n"] == n and r["k"] == k), key=lambda r: r["lr_mult"])
            if not rs:
                continue
            style = dict(color=N_COLOURS.get(n, "#7f7f7f"), dash=dashes[ks.index(k) % len(dashes)])
            label = f"n={n}, k={k}"
            if (n, k) in frozen:
                pareto.add_trace(go.Scatter(
                    x=[r["source_drop"] for r in rs], y=[r["target_acc"] - frozen[n, k] for r in rs],
                    mode="lines+markers+text", text=[f"x{r['lr_mult']:g}" for r in rs],
                    textposition=[("top center", "bottom center")[i % 2] for i in range(len(rs))],  # no overlap
                    name=label, line=style, hovertemplate="source drop %{x:.1%}, target gain %{y:+.1%}"))
            acc.add_trace(go.Scatter(x=[f"{r['lr_mult']:g}" for r in rs], y=[r["target_acc"] for r in rs],
                                     mode="lines+markers", name=label, line=style))
    pareto.update_layout(title="Target gain over the frozen arm vs. source drop<br>(labels: lr_mult, the learning-rate "
                               "multiplier)", **LAYOUT)
    pareto.update_layout(margin_t=95)  # room for the two-line title
    pareto.update_layout(hovermode="closest")
    pareto.update_xaxes(title_text="source drop (held-out accuracy before minus after)", tickformat=".1~%")
    pareto.update_yaxes(title_text="target gain over lr_mult 0", tickformat="+.1~%")
    acc.update_layout(title="Target accuracy per lr_mult (0: frozen, AnB; > 0: AnB+)", **LAYOUT)
    acc.update_xaxes(title_text="lr_mult of the retained levels", type="category")
    acc.update_yaxes(title_text="test accuracy", tickformat=".1~%")
    return [pareto, acc]


def finetune(settings: Settings, source, ds, targets, *, out_dir=None, command: str = "", workers: int | None = None,
             ray: str | None = None, stop=None, progress=None, on_summary=None, log=None,
             plain: bool = False) -> list[dict]:
    """Every (n, k, lr_mult, trial) run; the summary rows (n, k, lr_mult, target_acc, source_acc, source_drop)."""
    settings.check()
    recipe = settings.recipe()
    meta_settings = {**asdict(settings), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"}}
    shared = {**shared_for(source, ds, targets, settings.seed, recipe, heldout=True), "study": NAME}
    sets = {(k, t): training_set(ds, source, targets, k, t, settings.seed)
            for k in settings.samples for t in range(settings.trials)}
    tasks = [{"n": n, "k": k, "lr_mult": float(m), "trial": t, "seed": run_seed(settings.seed, Cell(n, k, t)),
              **sets[k, t]}
             for t in range(settings.trials) for k in settings.samples for n in settings.levels
             for m in settings.lr_mults]
    costs = [t["k"] * (1.0 if t["lr_mult"] > 0 else LEVEL_COST[t["n"]]) for t in tasks]
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        meta = {"question": QUESTION, "command": command, "source_accuracy": source.meta.get("heldout_acc")}
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta, costs=costs,
                      group=None if plain else (lambda t: t["n"] if t["lr_mult"] == 0 else 0),  # AnB+: every level
                      workers=workers, ray=ray, stop=stop, progress=progress, log=log,
                      on_summary=(summarize, on_summary) if on_summary else None)
        summary = summarize(rows)
        sd.finish(SUMMARY_FIELDS, summary, study_report(TITLE, QUESTION, command, figures(summary), summary,
                                                        SUMMARY_FIELDS, rows, TABLE.fields, meta), meta)
    return summary

