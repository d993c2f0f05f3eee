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
import threading
import time
from typing import Callable

import torch

from lenet.config import N_CLASSES, Recipe
from lenet.core.codes import transfer_codes
from lenet.core.model import LeNet5
from lenet.core.net import Net
from lenet.core.train import FitResult, fit
from lenet.data import to_net_input
from lenet.data.protocol import source_split, transfer_split
from lenet.grid.cells import TEST_PER_CLASS
from lenet.grid.experiment import source_fingerprint
from lenet.grid.runfolder import META, REPORT, RUNS, SUMMARY, RunFolder, Table, csv_text
from lenet.studies.runner import run_tasks

FORMAT = "lenet-transfer-lab/study/1"


def command_line(name: str, *, quick: bool, seed: int, data: str, data_dir: str | None, out: str,
                 source: str | None = None) -> str:
    """The CLI command that makes (or resumes) a study's folder."""
    parts = ["python -m lenet study", name] + (["--quick"] if quick else []) + [f"--seed {seed}", f"--data {data}"]
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
            costs: list[float] | None = None, workers: int | None = None, ray: str | None = None,
            stop: threading.Event | None = None,
            progress: Callable[[int, int], None] | None = None,
            on_summary: tuple[Callable[[list[dict]], list[dict]], Callable[[list[dict]], None]] | None = None,
            log: Callable[[str], None] | None = None) -> list[dict]:
        """Every planned run, the finished ones from runs.csv and the rest through fn(shared, task) on the
        workers; each finished row goes to runs.csv at once. Rows in plan order (only finished ones if stopped).
        on_summary = (summarize, callback): callback(summarize(rows so far)) after each run, for live figures."""
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
        for i, result in run_tasks(fn, shared, [tasks[i] for i in todo],
                                   costs=[costs[i] for i in todo] if costs else None, workers=workers, ray=ray,
                                   stop=stop):
            task = tasks[todo[i]]
            row = {f: result[f] if f in result else task[f] for f in table.fields}  # the task names the run
            done.append(row)
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
