"""source-classes: how the transfer trade-off moves with the number of source classes S.

The paper: "What remains to be investigated is how quickly this trade-off changes as the
number of classes that contribute to knowledge transfer increases." Source nets learn S
characters, in two arms: `per-class` (per_class samples of each, the paper's 400, so more classes
also means more images) and `fixed-total` (fixed_total images in all, fixed_total / S of each, so
only the number of classes changes). Both arms use the same characters at each S.

The characters: none of the 20 new ones nor a twin of one (lenet.data.twins), nested (the S = 5
set holds the S = 2 one), drawn in `orders` random orders; trial t uses order t % orders, so the
trials vary which characters the source net learnt, not only the k samples. An order is drawn so
that both arms can serve every prefix: the first S characters are drawn at random among those
with enough samples for fixed_total / S of each (so the smallest sets come from the commonest
characters). Every source net trains for the same budget of SGD steps (source_steps, no early
stop: a net on 2 characters sees them many more epochs than one on 40), with the source recipe's
learning rate and batch; each is kept in OUT/sources/ and its epochs and training accuracy go
to OUT/sources.csv. Then every (n, k, trial) transfer run; n = 0 transfers nothing, so it runs
once per (k, trial) as the reference.

The preset `hundreds` (Settings.hundreds, `--preset hundreds`) takes S to 200: the source pool adds
the Omniglot background characters (config.SOURCE_POOL_EXCLUDED left out) to the data's, 15 samples
of each and 5 held out (Omniglot has 20 drawers), the arm fixed-total at 600 images; the new
characters and their draws stay the data's, as at S <= 40 (lenet/config.py says why each number).
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
from lenet.data import CharacterSet, load
from lenet.data.omniglot import alphabet_of
from lenet.data.protocol import source_split
from lenet.data.twins import twins_of
from lenet.grid.cells import Cell, run_seed
from lenet.grid.runfolder import csv_text
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
TABLE = Table(key=("arm", "S", "n", "k", "trial"), result=("order", "seed", "train_acc", "target_acc", "epochs",
                                                          "seconds"),
              types=dict(arm=str, S=int, n=int, k=int, trial=int, order=int, seed=int, train_acc=float,
                         target_acc=float, epochs=int, seconds=float))
SOURCES_CSV = "sources.csv"
SOURCE_FIELDS = ("arm", "S", "order", "classes", "per_class", "epochs", "steps", "train_acc", "heldout_acc")
SUMMARY_FIELDS = ("arm", "S", "n", "k", "target_acc", "target_acc_min", "target_acc_max", "runs")
NONE = "none"  # the arm of the n = 0 reference runs (S = 0)
POOLS = ("data", "data+omniglot")
PRESETS = {"hundreds": "S up to 200, Omniglot's background characters joining the data's as source characters "
                       "(15 of each; the full version takes about 9 minutes on 2 cores)"}  # name: what it is


@dataclass(frozen=True)
class Settings:
    class_counts: tuple = (2, 5, 10, 20, 40)  # S; too large ones are replaced by the largest the data allows
    per_class: int = 400                      # samples per source character, arm per-class
    fixed_total: int = 8000                   # source images in all, arm fixed-total
    levels: tuple = (0, 3, 4, 5)
    samples: tuple = (1, 5, 20)
    trials: int = 3                           # trial t: its own k samples, initialisation and order t % orders
    orders: int = 3                           # random nested orders of the source characters
    seed: int = 0
    max_epochs: int | None = None             # transfer runs; None: the transfer recipe's cap
    source_steps: int = 8000                  # every source net's budget in SGD steps (16 epochs of 20 x 400)
    heldout_per_class: int = SOURCE_HELDOUT_PER_CLASS  # each source character's held-out samples
    pool: str = "data"                        # source characters: the data's, or "data+omniglot" (POOLS)

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(class_counts=(2, 5), per_class=100, fixed_total=600, levels=(0, 5), samples=(5,), trials=1,
                   orders=1, seed=seed, max_epochs=30, source_steps=300)

    @classmethod
    def hundreds(cls, seed: int = 0, quick: bool = False) -> "Settings":
        """S up to 200: the data's characters and the Omniglot background's (lenet/config.py); quick: S = 2
        and 100, one trial at n = 0 and 5, short source nets."""
        pool = dict(per_class=config.HUNDREDS_PER_CLASS, fixed_total=config.HUNDREDS_FIXED_TOTAL,
                    heldout_per_class=config.HUNDREDS_HELDOUT_PER_CLASS, pool="data+omniglot", seed=seed)
        if quick:
            return cls(class_counts=(2, 100), levels=(0, 5), samples=(5,), trials=1, orders=1, max_epochs=30,
                       source_steps=300, **pool)
        return cls(class_counts=config.HUNDREDS_CLASS_COUNTS, **pool)

    def check(self) -> "Settings":
        for n in self.levels:
            check_levels(n)
        if not self.class_counts or any(not isinstance(s, int) or s < 2 for s in self.class_counts):
            raise ValueError(f"source class counts S must be integers >= 2 (got {self.class_counts})")
        check_common(self.samples, {"per_class": self.per_class, "fixed_total": self.fixed_total, "trials": self.trials,
                                    "orders": self.orders, "source_steps": self.source_steps,
                                    "heldout_per_class": self.heldout_per_class},
                     {"max_epochs": self.max_epochs})
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)} (got {self.pool!r})")
        return self

    def recorded(self) -> dict:
        """The settings as meta.json records them: pool and heldout_per_class only when they differ from
        the defaults, so folders made before those settings existed still resume."""
        out, default = asdict(self), asdict(Settings())
        return {k: v for k, v in out.items() if k not in ("pool", "heldout_per_class") or v != default[k]}

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)

    def source_recipe(self) -> Recipe:
        """The source recipe's learning rate and batch, a budget of source_steps SGD steps and no early stop."""
        return config.SOURCE_RECIPE.replace(seed=self.seed, max_epochs=10**6, max_steps=self.source_steps,
                                            target_train_acc=1.01)


def nested_order(settings: Settings, ds, targets, order: int) -> list[str]:
    """One random order of the source pool (not new, no twin of a new character) whose first S characters,
    for every S, each have the samples both arms take at that S (max(per_class, fixed_total // S) + held out)."""
    counts = ds.counts()
    pool = [c for c in ds.classes if c not in targets and not twins_of(c) & set(targets)
            and counts[c] >= settings.per_class + settings.heldout_per_class]
    rng = np.random.default_rng([settings.seed, 5, order])
    chosen: list[str] = []
    for S in sorted(set(settings.class_counts)):
        need = max(settings.per_class, settings.fixed_total // S) + settings.heldout_per_class
        rich = [c for c in pool if c not in chosen and counts[c] >= need]
        chosen += rng.permutation(rich).tolist()[:S - len(chosen)]
    rest = [c for c in pool if c not in chosen]
    return chosen + rng.permutation(rest).tolist()


def joined(chars) -> str:
    """Class names as one field: EMNIST's characters run together ("49AB"), longer names (Omniglot's
    "Korean/character05") with spaces."""
    return ("" if all(len(c) == 1 for c in chars) else " ").join(chars)


def source_pool(settings: Settings, ds) -> CharacterSet:
    """The characters source nets are drawn from: the data's, and with pool "data+omniglot" the Omniglot
    background's too (the alphabets in config.SOURCE_POOL_EXCLUDED left out) as one set."""
    if settings.pool == "data":
        return ds
    om = load("omniglot")
    keep = [i for i, c in enumerate(om.classes) if alphabet_of(c) not in config.SOURCE_POOL_EXCLUDED]
    rows = np.flatnonzero(np.isin(om.labels, keep))
    new_label = np.full(len(om.classes), -1)
    new_label[keep] = np.arange(len(keep)) + len(ds.classes)
    names = sorted({alphabet_of(om.classes[i]) for i in keep})
    return CharacterSet(np.concatenate([ds.images, om.images[rows]]),
                        np.concatenate([ds.labels, new_label[om.labels[rows]]]),
                        list(ds.classes) + [om.classes[i] for i in keep], f"{ds.source}+omniglot",
                        f"{ds.description}; and {len(keep)} Omniglot background characters "
                        f"({', '.join(n.replace('_', ' ') for n in names)}), {len(rows):,} drawings")


def source_sets(settings: Settings, ds, targets) -> dict[tuple[str, int, int], tuple[list[str], int]]:
    """(arm, S, order) -> (the S source characters in class order, samples of each): each order's first S,
    the same characters in both arms; an S the data cannot supply is replaced by the largest it can."""
    counts = ds.counts()
    out = {}
    for o in range(settings.orders):
        order = nested_order(settings, ds, targets, o)
        for arm in ARMS:
            for S in sorted(set(settings.class_counts)):
                s = min(S, len(order))
                per = settings.per_class if arm == "per-class" else settings.fixed_total // s
                chars = order[:s]
                if s >= 2 and all(counts[c] >= per + settings.heldout_per_class for c in chars):
                    out.setdefault((arm, s, o), ([c for c in ds.classes if c in set(chars)], per))
    return out


def train_one(shared: dict, task: dict) -> dict:
    """One source net (on a worker) from its split: its weights, codes and meta as plain data."""
    net, res = train_source(task["split"], Recipe.from_dict(shared["recipe"]))
    net.meta["steps"] = res.steps
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


def across_rows(summary: list[dict], settings: Settings | None = None) -> list[dict]:
    """Summary rows with `vs_none`: test accuracy minus no transfer's (n = 0, same k and trials). An S the data
    could not supply (the whole pool, its size differing from split to split) is pooled as the largest S asked
    for (settings' class counts; the defaults' without settings)."""
    asked = (settings or Settings()).class_counts
    none = {r["k"]: r["target_acc"] for r in summary if r["arm"] == NONE}
    return [dict(r, S=r["S"] if r["arm"] == NONE or r["S"] in asked else max(asked),
                 vs_none=r["target_acc"] - none.get(r["k"], float("nan"))) for r in summary]


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
    pool = source_pool(settings, ds)
    sets = source_sets(settings, pool, targets)
    meta_settings = {**settings.recorded(), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"},
                     "source_recipe": src_recipe.to_dict(),
                     "source_sets": {f"{a} {S} {o}": [joined(c), per] for (a, S, o), (c, per) in sets.items()}}
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        distinct = {}  # (chars, per, order) -> the (arm, S, order) keys it serves: per-class S = 20 x 400 is
        for key, (chars, per) in sets.items():  # fixed-total's 8,000 / 20, one net
            distinct.setdefault((joined(chars), per, key[2]), []).append(key)
        nets, info = {}, {}
        for keys in distinct.values():
            where = sd.out / "sources" / "{}-{}-{}".format(*keys[0]) if sd.out is not None else None
            if where is not None and (where / checkpoint.WEIGHTS).exists():
                net = checkpoint.load(where)
                for key in keys:
                    nets[key], info[key] = net.model.state_dict(), net.meta
        todo = [keys for keys in distinct.values() if keys[0] not in nets]
        if todo:
            log(f"training {len(todo)} source nets ({settings.source_steps:,} SGD steps each): " +
                ", ".join(f"S={k[0][1]} x {sets[k[0]][1]} (order {k[0][2]})" for k in todo))
            tasks = [{"split": source_split(pool, sets[keys[0]][0], sets[keys[0]][1], settings.heldout_per_class,
                                            settings.seed)} for keys in todo]
            for i, res in run_tasks(train_one, {"recipe": src_recipe.to_dict()}, tasks,
                                    costs=[1.0] * len(tasks), workers=workers, ray=ray, stop=stop):
                codes = torch.from_numpy(res["codes"])
                model = LeNet5(n_outputs=codes.shape[1])
                model.load_state_dict({k: torch.from_numpy(v) for k, v in res["state"].items()})
                if sd.out is not None:
                    checkpoint.save(Net(model, tasks[i]["split"].classes, codes, res["meta"]),
                                    sd.out / "sources" / "{}-{}-{}".format(*todo[i][0]))
                for key in todo[i]:
                    nets[key], info[key] = model.state_dict(), res["meta"]
                arm, S, o = todo[i][0]
                log(f"source net S={S} x {sets[todo[i][0]][1]} (order {o}): train acc {res['meta']['train_acc']:.2%} "
                    f"in {res['meta']['epochs']} epochs")
            if stop is not None and stop.is_set():
                return []
        sources = [{"arm": a, "S": S, "order": o, "classes": joined(sets[a, S, o][0]), "per_class": sets[a, S, o][1],
                    "epochs": int(info[a, S, o]["epochs"]), "steps": int(info[a, S, o].get("steps", 0)),
                    "train_acc": float(info[a, S, o]["train_acc"]), "heldout_acc": float(info[a, S, o]["heldout_acc"])}
                   for a, S, o in sets]
        sd.write(SOURCES_CSV, csv_text(SOURCE_FIELDS, sources, floats=".6f"))
        shared = {**shared_for(source, ds, targets, settings.seed, recipe), "study": NAME,
                  "sources": {f"{a} {S} {o}": st for (a, S, o), st in nets.items()}}
        train = {(k, t): training_set(ds, source, targets, k, t, settings.seed)
                 for k in settings.samples for t in range(settings.trials)}
        arm_S = sorted({(a, S) for a, S, _ in sets})
        tasks = []
        for t in range(settings.trials):
            o = t % settings.orders
            for k in settings.samples:
                for n in settings.levels:
                    keys = [(NONE, 0)] if n == 0 else [(a, S) for a, S in arm_S if (a, S, o) in sets]
                    tasks += [{"arm": a, "S": S, "n": n, "k": k, "trial": t, "order": o, "source": f"{a} {S} {o}",
                               "seed": run_seed(settings.seed, Cell(n, k, t)), **train[k, t]} for a, S in keys]
        meta = {"question": QUESTION, "command": command, "source_nets": sources}
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta,
                      costs=[t["k"] * (1.0 if t["n"] == 0 else 0.15) for t in tasks],
                      group=None if plain else (lambda t: t["n"]), workers=workers, ray=ray, stop=stop, progress=progress, log=log,
                      on_summary=(summarize, on_summary) if on_summary else None)
        summary = summarize(rows)
        sd.finish(SUMMARY_FIELDS, summary, study_report(TITLE, QUESTION, command, figures(summary), summary,
                                                        SUMMARY_FIELDS, rows, TABLE.fields, meta), meta)
    return summary
