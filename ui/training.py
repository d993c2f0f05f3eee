"""The kinds of training the pages start: source, transfer, teach, the experiment grid."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet import settings
from lenet.config import N_CLASSES, TRANSFER_RECIPE, Recipe
from lenet.data import CharacterSet, DataError
from lenet.data.protocol import Split, default_class_split, source_split, transfer_split
from lenet.core.net import Net
from lenet.files import ASSETS
from lenet.runtime.jobs import Job
from lenet.runtime.tasks import job_function

from .session import dataset, session_id, state
from .background import job_label, session_jobs, submit
from .nets import active_source


# --- the two kinds of training the pages start ----------------------------------------------

def start_source_training(ds: CharacterSet, chars: list[str], per_class: int, heldout: int,
                          recipe: Recipe, label: str, drawn: float = 0.0) -> Job:
    split = source_split(ds, chars, per_class, heldout)  # bad choices raise here, before queueing
    return _start("source", label, {"task": "source", "recipe": recipe.to_dict(), "drawn": drawn}, {},
                  {"split": split}, classes=list(chars), per_class=per_class)


def _start(kind: str, label: str, spec: dict, nets: dict, splits: dict, ds: CharacterSet | None = None,
           **params) -> Job:
    return submit(kind, label, job_function(spec, nets, splits, ds, load=dataset), spec=spec, nets=nets,
                  splits=splits, **params)


def start_transfer(source: Net, split: Split, n: int, recipe: Recipe, label: str, kind: str = "transfer",
                   readout: str = "mse", drawn: float = 0.0, **params) -> Job:
    """A transfer run: the paper's readout (mse) trains the levels above n with live curves; another
    (lenet.core.readouts) reads the new characters out at level n and records its accuracy once.
    drawn > 0: the worker adds that many drawn copies of each training sample (Teach's augmentation)."""
    from lenet.core.readouts import DEFAULT, check_readouts
    check_readouts([readout])
    overlap = sorted(set(source.classes) & set(split.classes))
    if overlap:  # checked here too so the message comes before queueing, not as a failed job
        raise ValueError(f"{' '.join(overlap)} already belong to the source net; new characters must be new")
    spec = {"task": "transfer", "n": n, "recipe": recipe.to_dict(), "drawn": drawn} if readout == DEFAULT else \
        {"task": "readout", "n": n, "recipe": recipe.to_dict(), "readout": readout}
    return _start(kind, label, spec, {"source": source}, {"split": split}, n=n, classes=list(split.classes),
                  readout=readout, **params)


# The Transfer page's readout choice (lenet.core.readouts), each as the page names it
READOUTS = {"mse": "mse (the paper's): the levels above n learn towards random codes",
            "ce": "ce: the levels above n learn one output per character (cross-entropy)",
            "centroid": "centroid: nearest class mean of the level-n features, nothing trained",
            "probe": "probe: logistic regression on the level-n features"}


def run_name(n: int, k: int, trial: int, readout: str = "mse") -> str:
    """A run's label: "n=4 k=5 trial 0", the readout named when it is not the paper's."""
    return f"n={n} k={k} trial {trial}" + ("" if readout == "mse" else f", {readout} readout")


def transfer_recipe(max_epochs: int, seed: int) -> Recipe:
    """The transfer recipe for a single run in the app: the test set every epoch, since the curve is
    the lesson (the grid evaluates once per run)."""
    return TRANSFER_RECIPE.replace(max_epochs=max_epochs, seed=seed, eval_every=1)


def default_targets(ds: CharacterSet, source: Net) -> list[str]:
    """The paper's other 20 characters when they are free, else the first 20 the source net lacks."""
    options = [c for c in ds.classes if c not in source.classes]
    if len(ds.classes) >= 2 * N_CLASSES:
        preferred = [c for c in default_class_split(ds)[1] if c in options]
        if len(preferred) == N_CLASSES:
            return preferred
    return options[:N_CLASSES]


def make_transfer_split(ds: CharacterSet, source: Net, chars: list[str], k: int, trial: int, seed: int) -> Split:
    return transfer_split(ds, chars, k, trial=trial, seed=seed, source_classes=source.classes)


def teach_split(drawn: CharacterSet) -> Split:
    """All drawn samples train; with >= 3 samples of every character, one of each is held out to test."""
    counts = drawn.counts()
    if len(drawn.classes) < 2:
        raise DataError(f"teach at least 2 characters (you have {len(drawn.classes)} with samples)")
    if min(counts.values()) >= 3:
        test_rows = [int(np.flatnonzero(drawn.labels == i)[-1]) for i in range(len(drawn.classes))]
        train_rows = [i for i in range(len(drawn)) if i not in set(test_rows)]
        return Split(drawn.subset(train_rows), drawn.subset(test_rows), list(drawn.classes))
    return Split(drawn, drawn.subset(np.zeros(0, np.int64)), list(drawn.classes))


def finished_runs(kind: str) -> list[tuple[str, Net, Job]]:
    """(label, net, job) of this session's finished or stopped jobs of one kind that produced a net."""
    out = []
    for job, meta in session_jobs(kind):
        snap = job.snapshot()
        if snap.state in ("done", "stopped") and isinstance(snap.result, Net):
            out.append((f"{job_label(job, meta)}{' (stopped)' if snap.state == 'stopped' else ''}",
                        snap.result, job))
    return out


def finished_nets(kind: str) -> list[tuple[str, Net]]:
    """(label, net) of this session's finished or stopped jobs of one kind that produced a net."""
    return [(label, net) for label, net, _ in finished_runs(kind)]


def all_nets() -> list[tuple[str, Net]]:
    """Every net this session can look at: the active source net, then transferred and taught ones."""
    nets = []
    net, label, _ = active_source()
    if net is not None:
        nets.append((f"source net ({label})", net))
    return nets + finished_nets("transfer") + finished_nets("teach")


# --- the experiment grid ------------------------------------------------------------------------

def is_omniglot(ds: CharacterSet) -> bool:
    return ds.source.startswith("omniglot")


def start_experiment(source: Net, ds: CharacterSet, seeds: list[int], levels: list[int], samples: list[int],
                     trials: int, recipe: Recipe, out_dir: Path, label: str) -> Job:
    """reproduce() in a worker process, one grid per seed (class split: the new characters, draws and
    initialisations; the active source net for all); each finished run is recorded so Figure 2
    fills in live. One seed writes out_dir itself, several write out_dir/seed-S and seeds.csv.
    On Omniglot (ds from ui.dataset("omniglot")) each split's new characters are one alphabet's."""
    from lenet.grid import experiment
    experiment.check_grid(levels, samples, trials)  # bad choices raise here, before queueing
    protocol = experiment.grid_protocol(ds)
    sizes = {k: protocol[k] for k in ("test_per_class", "val_per_class")}
    targets = {seed: experiment.grid_targets(ds, source.classes, seed)[0] for seed in seeds}
    for chars in targets.values():
        experiment.check_targets(ds, chars, source.classes, max(samples), **sizes)
    s = state()
    spec = {"task": "experiment", "data": ["omniglot", None] if is_omniglot(ds) else [s.data_kind, s.data_path],
            "targets": {str(seed): list(chars) for seed, chars in targets.items()},
            "levels": list(levels), "samples": list(samples), "trials": trials, "recipe": recipe.to_dict(),
            "out_dir": str(out_dir), "sizes": sizes}
    return _start("experiment", label, spec, {"source": source}, {}, ds=ds, out_dir=str(out_dir), seeds=list(seeds))


def read_experiment(out_dir: Path) -> list:
    """Every finished run of a grid folder, or of all class splits in a folder of seed-S grids."""
    from lenet.grid import experiment
    return [r for _, runs in experiment.read_splits(out_dir).values() for r in runs]


def experiment_runs(snap) -> list:
    from lenet.grid import experiment
    return [experiment.RunResult(**{k: v for k, v in r.items() if k != "kind"})
            for r in snap.records if r.get("kind") == "result"]


def experiment_summary(snap) -> list[dict]:
    from lenet.grid import experiment
    runs = experiment_runs(snap)
    return experiment.summarize(runs) if runs else []


def shipped_results(ds: CharacterSet) -> tuple[str, dict, list[dict], dict] | None:
    """(the data they were made on, {seed: runs}, across-seed summary with 95% intervals, the
    shipped claims and margins {"claims", "margins"}) of the results shipped for this kind of
    data (EMNIST's for the full set and the shipped subset alike), if any."""
    from lenet.grid import experiment
    folder = ASSETS / f"results-{ds.source.split('-')[0]}"
    if not folder.is_dir():
        return None
    found = {seed: mr for seed, mr in experiment.read_splits(folder).items() if mr[1]}
    if not found:
        return None
    splits = {seed: runs for seed, (_, runs) in found.items()}
    made_on = next(iter(found.values()))[0].get("data_description", "?")
    if (folder / experiment.CLAIMS).exists():  # what the command wrote: no bootstrap at every page load
        out = experiment.read_seed_outputs(folder)
        return made_on, splits, out["seeds"], out
    return made_on, splits, experiment.across_seeds(splits), {"claims": [], "margins": []}


def experiment_chart(snap, reference: list[dict] | None = None):
    from lenet.report.figures import accuracy_vs_levels
    summary = experiment_summary(snap)
    return accuracy_vs_levels(summary, reference) if summary else None


def experiment_dirs() -> list[Path]:
    """This session's finished (or partly finished) grids, newest first."""
    root = settings.home() / "experiments" / session_id()
    if not root.is_dir():
        return []
    found = {p.parent for p in root.glob("*/runs.csv")} | {p.parent.parent for p in root.glob("*/seed-*/runs.csv")}
    return sorted(found, reverse=True)
