"""class-choice: which source classes to pick, and can a cheap proxy tell beforehand?

The paper ends: "we will investigate techniques to select an optimal set of classes for
knowledge transfer". Several random source sets of equal size (disjoint from the new
characters) each train a source net with the source recipe (kept in OUT/sources/). Each set is
scored by a cheap proxy, the nearest-centroid k-shot accuracy on its net's frozen C5 features
(no training; lenet.studies.controls.nearest_centroid) on the trial's validation samples (a proxy
selects, so it never sees the test set), and by real transfer at n levels (test accuracy); the
report gives the scatter of proxy vs real, their rank correlation and the best, median and
worst set.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from lenet.core import checkpoint
from lenet import config
from lenet.config import Recipe
from lenet.data import to_net_input
from lenet.data.protocol import source_split
from lenet.grid.cells import Cell, run_seed
from lenet.report.figures import LAYOUT, k_colour
from lenet.core.model import LeNet5
from lenet.core.net import Net
from lenet.report.html import html_table
from lenet.core.transfer import check_levels, transfer
from lenet.studies.common import (
    SOURCE_HELDOUT_PER_CLASS, Build, StudyDir, Table, capped, check_common, run_group, run_plain, shared_for,
    source_model, source_settings, training_set, validation_set,
)
from lenet.studies.controls import nearest_centroid
from lenet.studies.criteria import spearman
from lenet.studies.runner import run_tasks
from lenet.report.study import study_report
from lenet.studies.source_classes import train_one

NAME = "class-choice"
FUNCTION = "class_choice"
TITLE = "Which source classes to pick?"
QUESTION = ("Do some sets of source characters transfer better than others of the same size? And does a cheap "
            "proxy, the nearest-centroid accuracy of the source net's frozen C5 features on the k samples, "
            "rank the sets as real transfer does?")
TABLE = Table(key=("set", "k", "trial"),
              result=("classes", "seed", "proxy_acc", "train_acc", "target_acc", "epochs", "seconds"),
              types=dict(set=int, k=int, trial=int, classes=str, seed=int, proxy_acc=float, train_acc=float,
                         target_acc=float, epochs=int, seconds=float))
SUMMARY_FIELDS = ("set", "classes", "k", "proxy_acc", "target_acc", "runs")


@dataclass(frozen=True)
class Settings:
    sets: int = 6               # random source sets
    set_size: int = 10          # characters per set
    per_class: int = 400        # source samples per character
    n: int = 5                  # retained levels of the real transfer (and the proxy's features: C5)
    samples: tuple = (1, 5, 20)
    trials: int = config.PAPER_TRIALS        # the paper's 5 trials per cell
    seed: int = 0
    max_epochs: int | None = None
    source_max_epochs: int | None = None

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(sets=3, set_size=5, per_class=100, samples=(5,), trials=1, seed=seed, max_epochs=30,
                   source_max_epochs=8)

    def check(self) -> "Settings":
        check_levels(self.n)
        if self.n == 0:
            raise ValueError("class-choice needs retained levels n >= 1")
        if self.sets < 2 or self.set_size < 2:
            raise ValueError(f"need at least 2 sets of at least 2 characters (got {self.sets} x {self.set_size})")
        check_common(self.samples, {"per_class": self.per_class, "trials": self.trials},
                     {"max_epochs": self.max_epochs, "source_max_epochs": self.source_max_epochs})
        return self

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)

    def source_recipe(self) -> Recipe:
        return capped(config.SOURCE_RECIPE.replace(seed=self.seed), self.source_max_epochs)


def source_sets(settings: Settings, ds, targets) -> list[list[str]]:
    """`sets` seeded random sets of `set_size` characters with enough samples, none of them new."""
    counts = ds.counts()
    rich = [c for c in ds.classes if c not in targets and counts[c] >= settings.per_class + SOURCE_HELDOUT_PER_CLASS]
    if len(rich) < settings.set_size:
        raise ValueError(f"only {len(rich)} characters outside the new ones have {settings.per_class} + "
                         f"{SOURCE_HELDOUT_PER_CLASS} samples; need {settings.set_size}")
    rng = np.random.default_rng([settings.seed, 6])
    return [sorted(rng.choice(rich, settings.set_size, replace=False).tolist(), key=ds.classes.index)
            for _ in range(settings.sets)]


def build(shared: dict, task: dict) -> Build:
    """The transfer net from the set's source net, with the set's proxy score on the trial's validation samples."""
    src = source_model({**shared, "source_state": shared["sources"][task["set"]]})
    x, y = to_net_input(task["images"]), torch.from_numpy(task["labels"])
    xv, yv = to_net_input(task["val_images"]), torch.from_numpy(task["val_labels"])
    proxy = nearest_centroid(src, shared["n"], x, y, xv, yv)
    return Build(transfer(src, shared["n"], seed=task["seed"]), shared["n"], row={"proxy_acc": proxy})


def run_one(shared: dict, task: dict) -> dict:
    return run_plain({**shared, "study": NAME}, task)


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["k"], r["set"]), []).append(r)
    return [{"set": s, "classes": rs[0]["classes"], "k": k, "proxy_acc": float(np.mean([r["proxy_acc"] for r in rs])),
             "target_acc": float(np.mean([r["target_acc"] for r in rs])), "runs": len(rs)}
            for (k, s), rs in sorted(groups.items())]


def agreement(summary: list[dict]) -> dict:
    """Per k: Spearman of proxy vs real over the sets, and the best, median and worst set by real transfer."""
    out = {}
    for k in sorted({r["k"] for r in summary}):
        rs = sorted((r for r in summary if r["k"] == k), key=lambda r: -r["target_acc"])
        out[str(k)] = {"spearman": spearman([r["proxy_acc"] for r in rs], [r["target_acc"] for r in rs]),
                       "best": rs[0]["classes"], "median": rs[len(rs) // 2]["classes"], "worst": rs[-1]["classes"],
                       "best_acc": rs[0]["target_acc"], "worst_acc": rs[-1]["target_acc"]}
    return out


ACROSS = (("k",), ("spearman", "best_acc", "worst_acc", "spread", "mean_acc"))


def across_rows(summary: list[dict], settings: Settings | None = None) -> list[dict]:
    """Per k (the sets differ from split to split): the proxy's rank agreement with real transfer, the
    best, worst and mean set's test accuracy, and the spread (best minus worst)."""
    out = []
    for k, a in agreement(summary).items():
        accs = [r["target_acc"] for r in summary if r["k"] == int(k)]
        out.append({"k": int(k), "spearman": a["spearman"], "best_acc": a["best_acc"], "worst_acc": a["worst_acc"],
                    "spread": a["best_acc"] - a["worst_acc"], "mean_acc": float(np.mean(accs))})
    return out


def figures(summary: list[dict]) -> list[go.Figure]:
    fig = go.Figure()
    for k in sorted({r["k"] for r in summary}):
        rs = [r for r in summary if r["k"] == k]
        fig.add_trace(go.Scatter(x=[r["proxy_acc"] for r in rs], y=[r["target_acc"] for r in rs], mode="markers",
                                 text=[r["classes"] for r in rs], name=f"k = {k}",  # the set on hover: labels overlap
                                 marker=dict(color=k_colour(k), size=10)))
    fig.update_layout(title="Real transfer vs. the nearest-centroid proxy,<br>one point per source set (hover: its classes)",
                      **LAYOUT)
    fig.update_layout(margin_t=95)  # room for the two-line title
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(title_text="proxy: nearest-centroid accuracy on frozen C5 features", tickformat=".1~%")
    fig.update_yaxes(title_text="real transfer: test accuracy", tickformat=".1~%")
    return [fig]


def class_choice(settings: Settings, source, ds, targets, *, out_dir=None, command: str = "",
                 workers: int | None = None, ray: str | None = None, stop=None, progress=None, on_summary=None,
                 log=None, plain: bool = False) -> list[dict]:
    """A source net per random set, then every (set, k, trial) transfer run with its proxy score."""
    settings.check()
    log = log or (lambda msg: None)
    recipe, src_recipe = settings.recipe(), settings.source_recipe()
    sets = source_sets(settings, ds, targets)
    meta_settings = {**asdict(settings), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"},
                     "source_recipe": src_recipe.to_dict(), "source_sets": ["".join(s) for s in sets]}
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        nets = {}
        for i in range(len(sets)):
            where = sd.out / "sources" / f"set-{i}" if sd.out is not None else None
            if where is not None and (where / checkpoint.WEIGHTS).exists():
                nets[i] = checkpoint.load(where).model.state_dict()
        todo = [i for i in range(len(sets)) if i not in nets]
        if todo:
            log(f"training {len(todo)} source nets on {settings.set_size} characters x {settings.per_class}")
            tasks = [{"split": source_split(ds, sets[i], settings.per_class, SOURCE_HELDOUT_PER_CLASS, settings.seed)}
                     for i in todo]
            for j, res in run_tasks(train_one, {"recipe": src_recipe.to_dict()}, tasks, workers=workers, ray=ray,
                                    stop=stop):
                codes = torch.from_numpy(res["codes"])
                model = LeNet5(n_outputs=codes.shape[1])
                model.load_state_dict({k: torch.from_numpy(v) for k, v in res["state"].items()})
                if sd.out is not None:
                    checkpoint.save(Net(model, sets[todo[j]], codes, res["meta"]), sd.out / "sources" / f"set-{todo[j]}")
                nets[todo[j]] = model.state_dict()
                log(f"source set {todo[j]} ({''.join(sets[todo[j]])}): train acc {res['meta']['train_acc']:.2%}")
            if stop is not None and stop.is_set():
                return []
        shared = {**shared_for(source, ds, targets, settings.seed, recipe), "sources": nets, "n": settings.n,
                  "study": NAME}
        train = {(k, t): {**training_set(ds, source, targets, k, t, settings.seed),
                          **validation_set(ds, source, targets, k, t, settings.seed)}
                 for k in settings.samples for t in range(settings.trials)}
        tasks = [{"set": i, "k": k, "trial": t, "classes": "".join(sets[i]),
                  "seed": run_seed(settings.seed, Cell(settings.n, k, t)), **train[k, t]}
                 for t in range(settings.trials) for k in settings.samples for i in range(len(sets))]
        meta = {"question": QUESTION, "command": command}
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta,
                      costs=[float(t["k"]) for t in tasks], group=None if plain else (lambda t: 0), workers=workers,
                      ray=ray, stop=stop, progress=progress, log=log, on_summary=(summarize, on_summary) if on_summary else None)
        summary = summarize(rows)
        meta["agreement"] = agreement(summary)
        extra = html_table(["k", "Spearman (proxy vs real)", "best set", "median set", "worst set"],
                       [[k, f"{a['spearman']:+.2f}", f"{a['best']} ({a['best_acc']:.1%})", a["median"],
                         f"{a['worst']} ({a['worst_acc']:.1%})"] for k, a in meta["agreement"].items()])
        sd.finish(SUMMARY_FIELDS, summary, study_report(TITLE, QUESTION, command, figures(summary), summary,
                                                        SUMMARY_FIELDS, rows, TABLE.fields, meta,
                                                        extra=[("Does the proxy rank the sets?", extra)]), meta)
    return summary
