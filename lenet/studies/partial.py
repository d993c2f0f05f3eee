"""partial: partially transferred levels, the paper's own proposal.

At one level (C1: 6 maps, C3: 16, C5: 120 units; C3 by default) the source net's maps are
ranked by a criterion (lenet.studies.criteria) and the top fraction p is transferred and
frozen; the level's other maps are released: they start from the new net's own
initialisation and train. Levels below stay frozen, levels above train, so p = 0 is the
grid's run with the levels below retained (n = 2 for C3) and p = 1 the run with the level
retained too (n = 3). A kept map is frozen by a zero gradient mask on its rows, so SGD
never moves it (w -= lr * 0), and a run is named by its set of kept maps: criteria that
keep the same set share one run.

Each trial ranks the maps afresh: the source-task criteria (saliency, hessian, taylor) on that
trial's own resample of the source net's training characters, mutual information on the trial's
k samples, random with the trial's seed. So every criterion is compared over as many map sets as
trials, and each against random trial by trial (a paired difference with a 95% interval).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from lenet import config
from lenet.config import LEVELS, Recipe
from lenet.data import to_net_input
from lenet.data.protocol import source_split
from lenet.grid.cells import Cell, run_seed
from lenet.report.claims import pooled
from lenet.report.figures import LAYOUT
from lenet.core.model import LeNet5
from lenet.report.html import escape, html_table
from lenet.studies import criteria as C
from lenet.studies.common import (
    Build, StudyDir, Table, capped, check_common, run_group, run_plain, shared_for, source_model, source_settings,
    training_set, with_hooks,
)
from lenet.report.study import study_report

NAME = "partial"
FUNCTION = "partial"
TITLE = "Partially transferred levels"
QUESTION = ("Instead of transferring a level whole or not at all, keep only its most useful feature maps frozen "
            "and retrain the rest from scratch: does a partly transferred level beat both, and at which fraction? "
            "And which criterion picks the maps to keep best: OBD saliency, first-order Taylor, mutual "
            "information with the new classes, or chance?")

TABLE = Table(key=("k", "trial", "kept"), result=("seed", "train_acc", "target_acc", "epochs", "seconds"),
              types=dict(k=int, trial=int, kept=str, seed=int, train_acc=float, target_acc=float, epochs=int,
                         seconds=float))
SUMMARY_FIELDS = ("level", "criterion", "kept_fraction", "k", "target_acc", "target_acc_min", "target_acc_max",
                  "runs", "vs_random", "vs_random_low", "vs_random_high")
CRITERION_COLOURS = {"saliency": "#1f77b4", "hessian": "#9467bd", "taylor": "#ff7f0e", "mutual-info": "#2ca02c",
                     "random": "#7f7f7f"}
SCORE_PURPOSE = 5  # mixed into the seed of a trial's resample of the source characters (protocol.py uses 1-3)


@dataclass(frozen=True)
class Settings:
    level: str = "c3"                            # c1, c3 or c5
    criteria: tuple = C.CRITERIA
    fractions: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)  # kept fraction p of the level's maps
    samples: tuple = (1, 5, 20)                  # samples per class k
    trials: int = config.PAPER_TRIALS        # the paper's 5 trials per cell
    seed: int = 0
    max_epochs: int | None = None                # None: the transfer recipe's cap
    score_per_class: int = 50                    # source training samples per character for saliency, taylor
                                                 # (a new draw from the source's training set every trial)
    probes: int = 64                             # Hutchinson probes of the `hessian` variant

    @classmethod
    def quick(cls, seed: int = 0) -> "Settings":
        return cls(fractions=(0.0, 0.5, 1.0), samples=(5,), trials=1, seed=seed, max_epochs=30,
                   score_per_class=20, probes=16)

    def check(self) -> "Settings":
        C.check_level(self.level)
        unknown = [c for c in self.criteria if c not in C.VARIANTS]
        if not self.criteria or unknown:
            raise ValueError(f"criteria must be some of {', '.join(C.VARIANTS)} (got {list(self.criteria)})")
        if not self.fractions or any(not 0 <= p <= 1 for p in self.fractions):
            raise ValueError(f"kept fractions must be in [0, 1] (got {self.fractions})")
        check_common(self.samples, {"trials": self.trials, "score_per_class": self.score_per_class,
                                    "probes": self.probes}, {"max_epochs": self.max_epochs})
        return self

    def recipe(self) -> Recipe:
        return capped(config.TRANSFER_RECIPE, self.max_epochs)


def kept_count(fraction: float, maps: int) -> int:
    return int(np.floor(fraction * maps + 0.5))  # half up: 0.25 of C1's 6 maps keeps 2


def partial_build(source: LeNet5, level: str, kept, seed: int) -> Build:
    """A new net (initialised from seed) with the source's levels below `level` frozen, the kept maps
    of `level` copied and held fixed by a zero gradient scale, everything else fresh and trainable."""
    idx = C.check_level(level)
    kept = sorted(set(kept))
    if any(not 0 <= m < C.MAPS[level] for m in kept):
        raise ValueError(f"{level} has maps 0..{C.MAPS[level] - 1} (got {kept})")
    net = LeNet5(n_outputs=source.f6.out_features, seed=seed)
    for name in LEVELS[:idx]:
        getattr(net, name).load_state_dict(getattr(source, name).state_dict())
    layer, src = getattr(net, level), getattr(source, level)
    if len(kept) == C.MAPS[level]:  # the whole level transferred: plain freezing, as the grid does
        layer.load_state_dict(src.state_dict())
        return Build(net, idx + 1)
    scale = {}
    for pname, rows in C.map_rows(net, level, kept).items():
        p = layer.get_parameter(pname)
        with torch.no_grad():
            p[rows] = src.get_parameter(pname)[rows]
        mask = torch.ones_like(p)
        mask[rows] = 0.0
        scale[f"{level}.{pname}"] = mask
    return Build(net, idx, scale)  # the levels below run frozen, once


def partial_net(source: LeNet5, level: str, kept, seed: int) -> LeNet5:
    """partial_build on the plain path: the masks as gradient hooks."""
    return with_hooks(partial_build(source, level, kept, seed))


def encode(kept) -> str:
    return " ".join(map(str, sorted(kept)))


def build(shared: dict, task: dict) -> Build:
    return partial_build(source_model(shared), shared["level"], [int(m) for m in task["kept"].split()], task["seed"])


def run_one(shared: dict, task: dict) -> dict:
    return run_plain({**shared, "study": NAME}, task)


def score_maps(settings: Settings, source, ds, sets: dict) -> dict[str, list[float]]:
    """Every criterion's score of every map, per 'criterion k trial'. The source-task criteria score
    each trial on its own draw of score_per_class of each source character's training samples, so
    they depend on the trial (not on k); mutual information on the trial's k samples."""
    recipe = source.meta.get("recipe") or {}
    split = source_split(ds, source.classes, int(source.meta.get("train_per_class", 400)), 0, int(recipe.get("seed", 0)))
    model, level = source.model, settings.level
    by_trial = {}
    for t in range(settings.trials):
        rng = np.random.default_rng([settings.seed, SCORE_PURPOSE, t])
        rows = np.concatenate([rng.permutation(np.flatnonzero(split.train.labels == c))[:settings.score_per_class]
                               for c in range(len(source.classes))])
        x, y = to_net_input(split.train.images[rows]), torch.from_numpy(split.train.labels[rows])
        by_trial[t] = {}
        if "saliency" in settings.criteria:
            by_trial[t]["saliency"] = C.saliency(model, x, y, source.codes, level)
        if "hessian" in settings.criteria:
            by_trial[t]["hessian"] = C.hessian(model, x, y, source.codes, level, settings.probes, settings.seed * 1000 + t)
        if "taylor" in settings.criteria:
            by_trial[t]["taylor"] = C.taylor(model, x, y, source.codes, level)
    scores = {}
    for (k, t), s in sets.items():
        for c in settings.criteria:
            if c == "mutual-info":
                v = C.mutual_info(model, to_net_input(s["images"]), s["labels"], level)
            elif c == "random":
                v = C.random_scores(level, settings.seed * 1000 + t)
            else:
                v = by_trial[t][c]
            scores[f"{c} {k} {t}"] = [float(a) for a in v]
    return scores


def picks(settings: Settings, scores: dict) -> dict[tuple, str]:
    """(criterion, kept_fraction, k, trial) -> the kept maps (encoded)."""
    M = C.MAPS[settings.level]
    return {(c, float(p), k, t): encode(C.ranking(scores[f"{c} {k} {t}"])[:kept_count(p, M)])
            for c in settings.criteria for p in settings.fractions for k in settings.samples
            for t in range(settings.trials)}


def correlations(settings: Settings, scores: dict) -> dict:
    """Mean Spearman rank correlation between criteria over the trials, per k: {k: {a: {b: rho}}}."""
    out = {}
    for k in settings.samples:
        out[str(k)] = {a: {b: float(np.mean([C.spearman(scores[f"{a} {k} {t}"], scores[f"{b} {k} {t}"])
                                             for t in range(settings.trials)]))
                           for b in settings.criteria} for a in settings.criteria}
    return out


def summarize(rows: list[dict], settings: Settings, chosen: dict[tuple, str]) -> list[dict]:
    """Per (criterion, p, k): accuracy mean/min/max over the trials' map sets, and the paired
    difference from random (same k, p and trial) with its 95% interval, trials resampled (claims.pooled)."""
    by_key = {(r["k"], r["trial"], r["kept"]): r for r in rows}
    acc: dict[tuple, dict[int, float]] = {}
    for (c, p, k, t), kept in chosen.items():
        r = by_key.get((k, t, kept))
        if r is not None:
            acc.setdefault((c, p, k), {})[t] = r["target_acc"]
    order = {c: i for i, c in enumerate(settings.criteria)}
    out = []
    for (c, p, k), by_t in sorted(acc.items(), key=lambda i: (i[0][2], order[i[0][0]], i[0][1])):
        a = list(by_t.values())
        base = acc.get(("random", p, k), {})
        paired = [by_t[t] - base[t] for t in by_t if t in base] if c != "random" else []
        diff = dict(zip(("mean", "low", "high"), pooled(paired))) if paired else {}
        out.append({"level": settings.level, "criterion": c, "kept_fraction": p, "k": k, "target_acc": float(np.mean(a)),
                    "target_acc_min": float(min(a)), "target_acc_max": float(max(a)), "runs": len(a),
                    "vs_random": diff.get("mean", math.nan), "vs_random_low": diff.get("low", math.nan),
                    "vs_random_high": diff.get("high", math.nan)})
    return out


ACROSS = (("level", "criterion", "kept_fraction", "k"), ("target_acc", "vs_random", "vs_whole"))


def across_rows(summary: list[dict], settings: Settings | None = None) -> list[dict]:
    """Summary rows with `vs_whole`: test accuracy minus the whole level's (p = 1, the grid's run)."""
    whole = {r["k"]: r["target_acc"] for r in summary if r["kept_fraction"] == 1.0}
    return [dict(r, vs_whole=r["target_acc"] - whole.get(r["k"], math.nan)) for r in summary]


def figures(summary: list[dict]) -> list[go.Figure]:
    """Target accuracy vs kept fraction, one line per criterion, one panel per k."""
    ks = sorted({r["k"] for r in summary}) or [0]
    fig = make_subplots(rows=1, cols=len(ks), subplot_titles=[f"k = {k}" for k in ks], shared_yaxes=True)
    for i, k in enumerate(ks):
        for c in C.VARIANTS:
            rs = sorted((r for r in summary if r["k"] == k and r["criterion"] == c), key=lambda r: r["kept_fraction"])
            if rs:
                fig.add_trace(go.Scatter(x=[r["kept_fraction"] for r in rs], y=[r["target_acc"] for r in rs],
                                         mode="lines+markers", name=c, legendgroup=c, showlegend=i == 0,
                                         line=dict(color=CRITERION_COLOURS[c]),
                                         error_y=dict(type="data", symmetric=False,
                                                      array=[r["target_acc_max"] - r["target_acc"] for r in rs],
                                                      arrayminus=[r["target_acc"] - r["target_acc_min"] for r in rs])),
                              1, i + 1)
    level = summary[0]["level"].upper() if summary else ""
    fig.update_layout(title=f"Test accuracy vs. the fraction of {level}'s maps kept<br>(the rest retrained)", **LAYOUT)
    fig.update_layout(margin_t=95)  # room for the two-line title
    fig.update_xaxes(title_text="kept fraction p", tickformat=".1~%")
    fig.update_yaxes(title_text="test accuracy", tickformat=".1~%", col=1)
    return [fig]


def _correlation_html(corr: dict) -> str:
    parts = []
    for k, m in corr.items():
        names = list(m)
        parts.append(f"<p>k = {escape(k)}</p>" + html_table(["criterion", *names],
                                                    [[a, *[f"{m[a][b]:+.2f}" for b in names]] for a in names], left=1))
    return "".join(parts)


def partial(settings: Settings, source, ds, targets, *, out_dir=None, command: str = "", workers: int | None = None,
            ray: str | None = None, stop=None, progress=None, on_summary=None, log=None,
            plain: bool = False) -> list[dict]:
    """Every distinct kept set per (k, trial); the summary rows (level, criterion, kept_fraction, k, target_acc...)."""
    settings.check()
    log = log or (lambda msg: None)
    recipe = settings.recipe()
    meta_settings = {**asdict(settings), **source_settings(source, ds, targets),
                     "recipe": {f: v for f, v in recipe.to_dict().items() if f != "seed"}}
    shared = {**shared_for(source, ds, targets, settings.seed, recipe), "level": settings.level, "study": NAME}
    sets = {(k, t): training_set(ds, source, targets, k, t, settings.seed)
            for k in settings.samples for t in range(settings.trials)}
    with StudyDir(out_dir, NAME, meta_settings) as sd:
        scores = sd.old.get("scores")  # a resumed study keeps the rankings its finished runs used
        if scores is None:
            log(f"ranking {settings.level}'s {C.MAPS[settings.level]} maps by {', '.join(settings.criteria)}")
            scores = score_maps(settings, source, ds, sets)
        chosen = picks(settings, scores)
        keys = sorted({(k, t, kept) for (_, _, k, t), kept in chosen.items()}, key=lambda x: (x[1], x[0], x[2]))
        idx = C.check_level(settings.level)
        tasks = [{"k": k, "trial": t, "kept": kept, "seed": run_seed(settings.seed, Cell(idx, k, t)), **sets[k, t]}
                 for k, t, kept in keys]
        corr = correlations(settings, scores)
        meta = {"question": QUESTION, "command": command, "scores": scores, "rank_correlation": corr}
        summarize_rows = lambda rows: summarize(rows, settings, chosen)
        full = lambda t: len(t["kept"].split()) == C.MAPS[settings.level]  # trains from the level above
        rows = sd.run(TABLE, tasks, run_plain if plain else run_group, shared, meta,
                      costs=[float(t["k"]) for t in tasks], group=None if plain else full, workers=workers,
                      ray=ray, stop=stop, progress=progress, log=log,
                      on_summary=(summarize_rows, on_summary) if on_summary else None)
        summary = summarize_rows(rows)
        report = study_report(TITLE, QUESTION, command, figures(summary), summary, SUMMARY_FIELDS, rows, TABLE.fields,
                              meta, extra=[("Rank correlation between criteria (Spearman, mean over trials)",
                                            _correlation_html(corr))])
        sd.finish(SUMMARY_FIELDS, summary, report, meta)
    return summary
