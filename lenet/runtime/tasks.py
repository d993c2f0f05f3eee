"""The trainings the app runs as jobs, as module-level functions `task(job, ...)` so that
`lenet.runtime.worker.in_worker` can run them in a worker process. `job` is a Job or, in a worker,
a WorkerLink: both offer record, progress and stop_event."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from lenet.config import Recipe
from lenet.data import CharacterSet
from lenet.data.protocol import Split
from lenet.core.net import Net, train_source, train_transfer

STEP_RECORD_SECONDS = 0.25  # at most 4 per-step loss records a second: live, but cheap


def recorders(job) -> dict:
    """on_step / on_epoch callbacks that append to the job's record (step losses throttled)."""
    last = [0.0]

    def on_step(step: int, loss: float) -> None:
        now = time.monotonic()
        if now - last[0] >= STEP_RECORD_SECONDS:
            last[0] = now
            job.record(kind="step", step=step, loss=loss)

    def on_epoch(stats) -> None:
        job.record(kind="epoch", **asdict(stats))
    return dict(on_step=on_step, on_epoch=on_epoch)


def source_task(job, split: Split, recipe: Recipe, drawn: float = 0.0) -> Net:
    """A source net; `drawn` > 0: with that many drawn copies of each training character
    (lenet.drawing.augment, config.DRAWN_SOURCE), as `train-source` trains by default."""
    extra, cfg = None, None
    if drawn > 0:
        from dataclasses import replace

        from lenet.config import DRAWN_SOURCE
        from lenet.drawing.augment import drawn_copies
        cfg = replace(DRAWN_SOURCE, copies=drawn)
        extra = drawn_copies(split.train, cfg, recipe.seed)
    net, _ = train_source(split, recipe, **recorders(job), stop=job.stop_event, extra=extra,
                          extra_meta=None if cfg is None else cfg.to_dict())
    return net


def first_source_task(job, kind: str, path: str | None, per_class: int, heldout: int, recipe: Recipe) -> Net:
    """A quick source net on the default source characters (the app's first start without a shipped one)."""
    from lenet.data import load
    from lenet.data.protocol import default_class_split, source_split
    ds = load(kind, path or None)
    return source_task(job, source_split(ds, default_class_split(ds)[0], per_class, heldout), recipe)


def transfer_task(job, source: Net, split: Split, n: int, recipe: Recipe, drawn: float = 0.0) -> Net:
    """A transferred net; `drawn` > 0: with that many drawn copies of each training sample (Teach's
    augmentation, config.DRAWN_TEACH), made here in the worker rather than in the page."""
    if drawn > 0:
        from dataclasses import replace

        from lenet.config import DRAWN_TEACH
        from lenet.drawing.augment import augment_split
        split = augment_split(split, replace(DRAWN_TEACH, copies=drawn), recipe.seed)
    net, _ = train_transfer(source, split, n, recipe, **recorders(job), stop=job.stop_event)
    return net


def readout_task(job, source: Net, split: Split, n: int, recipe: Recipe, readout: str) -> None:
    """The new characters read out at retained level n another way than the paper's (lenet.core.readouts:
    ce, centroid, probe): one record, the readout's accuracy on the training and the test set."""
    import torch

    from lenet.core.readouts import readout as read_out
    from lenet.data import to_net_input
    t0 = time.perf_counter()
    x = to_net_input(split.train.images)
    pred = read_out(readout, source.model, n, x, torch.from_numpy(split.train.labels),
                    torch.cat([x, to_net_input(split.test.images)]), recipe).numpy()
    train_acc = float((pred[:len(x)] == split.train.labels).mean())
    test_acc = float((pred[len(x):] == split.test.labels).mean()) if len(split.test) else None
    job.record(kind="epoch", epoch=1, step=0, train_loss=None, train_acc=train_acc, test_acc=test_acc,
               seconds=time.perf_counter() - t0, readout=readout)


def experiment_task(job, source: Net, ds: CharacterSet, targets: dict[int, list[str]], levels: list[int],
                    samples: list[int], trials: int, recipe: Recipe, out_dir: str, sizes: dict | None = None) -> str:
    """reproduce() once per seed (class split) into out_dir, or out_dir/seed-S and seeds.csv for
    several; resumable (finished runs there are kept). Each run is recorded, those finished before
    (a resumed grid) first. `sizes`: the test and validation sizes (reproduce's; default the paper's)."""
    from lenet.grid.experiment import reproduce, seed_dir, write_seed_outputs
    many = len(targets) > 1
    dirs = {seed: seed_dir(out_dir, seed) if many else Path(out_dir) for seed in targets}
    for d in dirs.values():
        for r in _finished_runs(Path(d)):
            job.record(kind="result", **asdict(r))
    total = len(targets) * len(levels) * len(samples) * trials
    by_seed = {}
    for i, (seed, chars) in enumerate(targets.items()):
        base = i * total // len(targets)
        by_seed[seed] = reproduce(
            source, ds, chars, levels=levels, samples=samples, trials=trials, seed=seed, recipe=recipe,
            out_dir=dirs[seed], fast=True, stop=job.stop_event, **(sizes or {}),
            on_result=lambda r: job.record(kind="result", **asdict(r)),
            progress=lambda done, _total, base=base: job.progress(base + done, total))
        if job.stop_event.is_set():
            break
    if many:
        write_seed_outputs(out_dir, by_seed)
    return out_dir


def _finished_runs(out: Path) -> list:
    """The runs a grid folder already holds (none when it is new or unreadable: reproduce says why)."""
    import json

    from lenet.grid.cells import grid
    from lenet.grid.experiment import META, RUNS, RunsFileError, read_runs
    try:
        settings = json.loads((out / META).read_text())["settings"]
        return read_runs(out / RUNS, grid(settings["levels"], settings["samples"], settings["trials"]),
                         settings["seed"])
    except (OSError, ValueError, KeyError, TypeError, RunsFileError):
        return []


def study_task(job, name: str, quick: bool, seed: int, source: Net, ds: CharacterSet, targets: list[str],
               out_dir: str, command: str, preset: str | None = None) -> str:
    """A study (lenet.studies; its quick version and/or one of its presets) into out_dir, resumably (finished
    runs there are kept); after each run its summary so far is recorded, so the figure fills in. Runs on the
    cluster of LENET_RAY if set."""
    from lenet import studies
    from lenet.grid.fast.ray_runner import address_from_env
    settings = studies.settings(name, seed, quick=quick, preset=preset)
    studies.run(name, settings, source, ds, targets, out_dir=out_dir, command=command, stop=job.stop_event,
                progress=job.progress, on_summary=lambda rows: job.record(kind="summary", rows=rows),
                ray=address_from_env(None))
    return out_dir


# --- specs: what a job is, kept on disk, and the one place a job function is built from one ---------

def job_function(spec: dict, nets: dict, splits: dict, ds: CharacterSet | None = None,
                 load: Callable[[str, str | None], CharacterSet] | None = None) -> Callable:
    """The job function (for JobPool.submit) of a spec, on start and on resume. `nets` and `splits`
    hold what the job store keeps beside the spec; a grid or study without `ds` gets its data from
    load(*spec["data"]) (the app passes its cached loader)."""
    from lenet.runtime.worker import in_worker
    task = spec.get("task")
    if task not in TASKS:
        raise ValueError(f"unknown job kind {task!r}; known: {', '.join(TASKS)}")
    if task in ("experiment", "study") and ds is None:
        if load is None:
            raise ValueError(f"a {task} job needs its data set: pass ds or load")
        ds = load(*spec["data"])
    return in_worker(*TASKS[task](spec, nets, splits, ds))


TASKS: dict[str, Callable] = {  # spec -> (task function, its arguments)
    "source": lambda spec, nets, splits, ds: (source_task, splits["split"], Recipe.from_dict(spec["recipe"]),
                                              float(spec.get("drawn", 0.0))),
    "transfer": lambda spec, nets, splits, ds: (transfer_task, nets["source"], splits["split"], spec["n"],
                                                Recipe.from_dict(spec["recipe"]), float(spec.get("drawn", 0.0))),
    "readout": lambda spec, nets, splits, ds: (readout_task, nets["source"], splits["split"], spec["n"],
                                               Recipe.from_dict(spec["recipe"]), spec["readout"]),
    "experiment": lambda spec, nets, splits, ds: (
        experiment_task, nets["source"], ds, {int(seed): chars for seed, chars in spec["targets"].items()},
        spec["levels"], spec["samples"], spec["trials"], Recipe.from_dict(spec["recipe"]), spec["out_dir"],
        spec.get("sizes")),
    "study": lambda spec, nets, splits, ds: (study_task, spec["study"], spec["quick"], spec["seed"], nets["source"],
                                             ds, spec["targets"], spec["out_dir"], spec["command"],
                                             spec.get("preset")),
}
NEEDS = {"source": ((), ("split",)), "transfer": (("source",), ("split",)),  # (nets, splits) the store keeps
         "readout": (("source",), ("split",)),
         "experiment": (("source",), ()), "study": (("source",), ())}
