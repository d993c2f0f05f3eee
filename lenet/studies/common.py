"""What every study shares with the paper's grid: its run folder (`lenet.grid.runfolder`), its runs.

A study plans a list of independent runs (each a dict whose `key` fields name it), runs those
not already in OUT/runs.csv on worker processes, and appends each finished run to runs.csv the
moment it ends (rewritten atomically), so a kill loses at most the runs in progress and a rerun
goes on from there. meta.json holds the settings first; a rerun with other settings is refused
rather than mixing two studies in one table. At the end: summary.csv and a self-contained
report.html (the question, the command, plotly figures, the tables).
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from lenet.config import LAYERS, N_CLASSES, Recipe
from lenet.core.codes import transfer_codes
from lenet.core.model import LeNet5
from lenet.core.net import Net
from lenet.core.train import FitResult, fit
from lenet.data import to_net_input
from lenet.data.protocol import source_split, transfer_split
from lenet.grid.cells import TEST_PER_CLASS
from lenet.grid.experiment import source_fingerprint
from lenet.grid.fast.nets import NetRun, train_nets
from lenet.grid.runfolder import META, REPORT, RUNS, SUMMARY, RunFolder, Table, csv_text
from lenet.studies.runner import run_tasks

FORMAT = "lenet-transfer-lab/study/1"


def command_line(name: str, *, quick: bool, seed: int, data: str, data_dir: str | None, out: str,
                 source: str | None = None, preset: str | None = None) -> str:
    """The CLI command that makes (or resumes) a study's folder."""
    parts = ["python -m lenet study", name] + (["--quick"] if quick else []) + \
        ([f"--preset {preset}"] if preset else []) + [f"--seed {seed}", f"--data {data}"]
    parts += [f"--data-dir {data_dir}"] if data_dir else []
    parts += [f"--source {source}"] if source else []
    return " ".join(parts + [f"--out {out}"])


def source_settings(source: Net, ds, targets) -> dict:
    """What decides every study's results besides its own settings."""
    return {"data": ds.source, "data_size": len(ds), "source_classes": list(source.classes),
            "source_sha256": source_fingerprint(source), "target_classes": list(targets)}


class StudyDir(RunFolder):
    """The run folder of one study (or nothing, with out_dir None): runs.csv, then summary.csv,
    report.html and meta.json (which records the study's name)."""

    def __init__(self, out_dir, study: str, settings: dict):
        super().__init__(out_dir, study, settings)
        self.study = study

    def run(self, table: Table, tasks: list[dict], fn: Callable[[dict, dict], dict], shared: dict, meta: dict, *,
            costs: list[float] | None = None, group: Callable[[dict], object] | None = None,
            workers: int | None = None, ray: str | None = None,
            stop: threading.Event | None = None,
            progress: Callable[[int, int], None] | None = None,
            on_summary: tuple[Callable[[list[dict]], list[dict]], Callable[[list[dict]], None]] | None = None,
            log: Callable[[str], None] | None = None) -> list[dict]:
        """Every planned run, the finished ones from runs.csv and the rest through fn(shared, task) on the
        workers; each finished row goes to runs.csv at once. Rows in plan order (only finished ones if stopped).
        on_summary = (summarize, callback): callback(summarize(rows so far)) after each run, for live figures.
        group (the fast path): runs with the same group(task) train together, fn(shared, {"tasks": [...]}) -> rows."""
        log = log or (lambda msg: None)
        planned = [table.key_of(t) for t in tasks]
        if len(set(planned)) != len(planned):
            raise ValueError("a study planned the same run twice")
        done = self.read(table, set(planned))
        meta.update(format=FORMAT, study=self.study, settings=self.settings, complete=False,
                    seconds=self.old.get("seconds", 0.0), started=self.old.get("started", time.time()))
        self.write(META, json.dumps(meta, indent=2))  # settings on disk before any run
        finished = {table.key_of(r) for r in done}
        todo = [i for i, key in enumerate(planned) if key not in finished]
        if done:
            log(f"resuming: {len(done)} of {len(planned)} runs already in {self.out / RUNS}")
        if progress:
            progress(len(done), len(planned))
        t0 = time.perf_counter()
        cost = [costs[i] if costs else 1.0 for i in range(len(tasks))]
        parts = groups(todo, tasks, cost, group, workers) if group else [[i] for i in todo]
        work = [{"tasks": [tasks[i] for i in p]} if group else tasks[p[0]] for p in parts]
        for g, results in run_tasks(fn, shared, work, costs=[sum(cost[i] for i in p) for p in parts],
                                    workers=workers, ray=ray, stop=stop):
            for i, result in zip(parts[g], results if group else [results]):
                task = tasks[i]
                done.append({f: result[f] if f in result else task[f] for f in table.fields})  # the task names the run
            self.write(RUNS, csv_text(table.fields, done))
            if on_summary:
                on_summary[1](on_summary[0](done))
            if progress:
                progress(len(done), len(planned))
        order = {key: i for i, key in enumerate(planned)}
        rows = sorted(done, key=lambda r: order[table.key_of(r)])
        meta.update(complete=len(rows) == len(planned), runs=len(rows), total=len(planned),
                    seconds=round(meta["seconds"] + time.perf_counter() - t0, 3), finished=time.time())
        self.write(RUNS, csv_text(table.fields, done))  # finishing order: earlier rows never move
        return rows

    def finish(self, summary_fields, summary: list[dict], report: str, meta: dict) -> None:
        self.write(SUMMARY, csv_text(summary_fields, summary, floats=".6f"))
        self.write(REPORT, report)
        self.write(META, json.dumps(meta, indent=2))


MAX_GROUP = 12  # runs trained as one stacked model: more amortise better, fewer balance the workers better


def groups(todo: list[int], tasks: list[dict], cost: list[float], key: Callable[[dict], object],
           workers: int | None) -> list[list[int]]:
    """Indexes of the runs to do, by key, each key's runs split (mixing k, as lenet.grid.fast.plan) so
    that no group holds more than MAX_GROUP runs or much more than its share of the work."""
    by: dict[object, list[int]] = {}
    for i in todo:
        by.setdefault(key(tasks[i]), []).append(i)
    share = sum(cost[i] for i in todo) / (2 * max(1, workers or 2))
    out = []
    for idx in by.values():
        idx = sorted(idx, key=lambda i: (tasks[i].get("k", 0), tasks[i].get("trial", 0)))
        n = max(math.ceil(len(idx) / MAX_GROUP), min(len(idx), math.ceil(sum(cost[i] for i in idx) / share)))
        out += [idx[p::n] for p in range(n)]
    return out


def check_common(samples, counts: dict, caps: dict | None = None) -> None:
    """The checks every study's settings share: samples per class k, counts (trials, ...) >= 1,
    and epoch caps that are None (the recipe's own) or >= 1."""
    if not samples or any(not isinstance(k, int) or k < 1 for k in samples):
        raise ValueError(f"samples per class k must be integers >= 1 (got {samples})")
    for name, v in counts.items():
        if v < 1:
            raise ValueError(f"{name} must be >= 1 (got {v})")
    for name, v in (caps or {}).items():
        if v is not None and v < 1:
            raise ValueError(f"{name} must be >= 1 (got {v})")


def capped(recipe, max_epochs: int | None):
    """The recipe, with its epoch cap replaced when the study sets one."""
    return recipe if max_epochs is None else recipe.replace(max_epochs=max_epochs)


def mean_min_max(values: list[float]) -> dict:
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


# --- what a worker needs to train a transfer run -----------------------------------------------

SOURCE_HELDOUT_PER_CLASS = 100  # as `train-source`: the source net's held-out samples per character


def source_heldout(source: Net, ds):
    """The source net's own held-out characters, drawn as `train-source` drew them (its seed and
    samples per class), so they are characters it never trained on."""
    recipe = source.meta.get("recipe") or {}
    split = source_split(ds, source.classes, int(source.meta.get("train_per_class", 400)),
                         SOURCE_HELDOUT_PER_CLASS, int(recipe.get("seed", 0)))
    return split.test


def shared_for(source: Net, ds, targets, seed: int, recipe, heldout: bool = False) -> dict:
    """Plain data every worker gets once: the source net, the fixed target test set, the recipe."""
    test = transfer_split(ds, targets, 1, 0, seed, TEST_PER_CLASS, source_classes=source.classes).test
    shared = {"source_state": {k: v.detach().clone() for k, v in source.model.state_dict().items()},
              "n_outputs": source.model.f6.out_features, "source_codes": source.codes.clone(),
              "test_images": test.images, "test_labels": test.labels, "n_classes": len(targets),
              "recipe": recipe.to_dict()}
    if heldout:
        h = source_heldout(source, ds)
        shared.update(heldout_images=h.images, heldout_labels=h.labels)
    return shared


def training_set(ds, source: Net, targets, k: int, trial: int, seed: int) -> dict:
    """A run's k samples per target character, as the grid draws them (transfer_split)."""
    train = transfer_split(ds, targets, k, trial, seed, TEST_PER_CLASS, source_classes=source.classes).train
    return {"images": train.images, "labels": train.labels}


def validation_set(ds, source: Net, targets, k: int, trial: int, seed: int) -> dict:
    """The trial's validation samples (transfer_split's), for anything that selects or scores a choice."""
    val = transfer_split(ds, targets, k, trial, seed, TEST_PER_CLASS, source_classes=source.classes).val
    return {"val_images": val.images, "val_labels": val.labels}


def source_model(shared: dict) -> LeNet5:
    model = LeNet5(n_outputs=shared["n_outputs"])
    model.load_state_dict(shared["source_state"])
    model.requires_grad_(False)
    return model


def run_recipe(shared: dict, task: dict) -> Recipe:
    """The study's transfer recipe with the run's own seed (init and batch order)."""
    return Recipe.from_dict(shared["recipe"]).replace(seed=task["seed"])


def train_target(net: LeNet5, shared: dict, task: dict, recipe: Recipe, started: float) -> tuple[dict, FitResult]:
    """The one transfer run of every study: `net` (its retained levels already frozen, however the study
    chose them) learns the task's k samples per new character against the paper's random target codes,
    and is scored on the shared fixed test set. The row's common fields, and fit's result."""
    codes = transfer_codes(recipe.code_kind, shared["n_classes"], recipe.seed, N_CLASSES)
    res = fit(net, to_net_input(task["images"]), torch.from_numpy(task["labels"]), codes, recipe,
              to_net_input(shared["test_images"]), torch.from_numpy(shared["test_labels"]))
    return dict(train_acc=float(res.train_acc), target_acc=float(res.test_acc), epochs=int(res.epochs),
                seconds=round(time.perf_counter() - started, 3)), res


# --- one transfer run, built by the study, trained by fit or by the fast path --------------------

@dataclass
class Build:
    """What a study's `build(shared, task)` makes: the net to train, the levels below `level` frozen
    (the net's own weights there), and gradient scales on trainable parameters ("c3.kernels" ->
    tensor shaped like it: lr_mult on fine-tuned levels, 0 on kept maps); `row` adds fields to its row."""
    net: LeNet5
    level: int
    scale: dict[str, torch.Tensor] | None = None
    row: dict = field(default_factory=dict)


def with_hooks(b: Build) -> LeNet5:
    """The plain path's net: levels below b.level frozen, the rest trainable, each scale a gradient hook.
    SGD with momentum is linear in the gradient, so a scale s trains those entries at lr * s (0: never moved)."""
    for i, name in enumerate(LAYERS):
        getattr(b.net, name).requires_grad_(i >= b.level)
    b.net.retained = b.level
    for name, s in (b.scale or {}).items():
        layer, p = name.split(".")
        getattr(b.net, layer).get_parameter(p).register_hook(lambda g, s=s: g * s)
    return b.net


def _study(shared: dict):
    from lenet import studies  # the module by name: workers get its functions without pickling them
    return studies.get(shared["study"])


def run_plain(shared: dict, task: dict) -> dict:
    """One run of the study named in shared, trained by `fit` (the reference the fast path must equal)."""
    t0 = time.perf_counter()
    mod = _study(shared)
    b = mod.build(shared, task)
    if isinstance(b, dict):  # no training (a readout)
        return dict(b, seconds=round(time.perf_counter() - t0, 3))
    row, _ = train_target(with_hooks(b), shared, task, run_recipe(shared, task), t0)
    row.update(b.row)
    return mod.after(shared, task, row, b.net) if hasattr(mod, "after") else row


def run_group(shared: dict, group: dict) -> list[dict]:
    """The runs of one group through the fast path (lenet.grid.fast.nets): their rows, in order."""
    t0 = time.perf_counter()
    mod = _study(shared)
    tasks = group["tasks"]
    builds = [mod.build(shared, t) for t in tasks]
    rows: list[dict | None] = [dict(b, seconds=round(time.perf_counter() - t0, 3)) if isinstance(b, dict) else None
                               for b in builds]
    runs = [NetRun(i, b.net, b.level, t["seed"], t["images"], t["labels"], b.scale)
            for i, (b, t) in enumerate(zip(builds, tasks)) if not isinstance(b, dict)]
    after = getattr(mod, "after", None)
    for fin in train_nets(runs, shared["test_images"], shared["test_labels"], shared["n_classes"],
                          Recipe.from_dict(shared["recipe"]), keep_weights=after is not None):
        b, task = builds[fin.key], tasks[fin.key]
        row = dict(train_acc=float(fin.train_acc), target_acc=float(fin.test_acc), epochs=int(fin.epochs),
                   seconds=round(fin.seconds, 3), **b.row)
        if after is not None:
            net = b.net
            with torch.no_grad():
                for name, w in fin.weights.items():
                    layer, p = name.split(".")
                    getattr(net, layer).get_parameter(p).copy_(w)
            row = after(shared, task, row, net)
        rows[fin.key] = row
    return rows
