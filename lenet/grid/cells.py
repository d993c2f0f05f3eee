"""The grid's cells and results: one transfer run per (retained levels n, samples per class k, trial).

`run_cell` is the plain reference path for one cell; the fast path (`lenet.grid.fast`) gives
the same RunResult for many cells at once.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields

from lenet.config import TRANSFER_RECIPE, Recipe
from lenet.core.net import Net, train_transfer
from lenet.data import CharacterSet
from lenet.data.protocol import PAPER, VAL_PER_CLASS, transfer_split

TEST_PER_CLASS = PAPER["test_per_class"]


@dataclass(frozen=True, order=True)
class Cell:
    n: int      # retained levels
    k: int      # samples per class
    trial: int


@dataclass
class RunResult:
    n: int
    k: int
    trial: int
    seed: int          # init / batch-order seed of the run (run_seed)
    train_acc: float
    test_acc: float    # on the test characters (TEST_PER_CLASS x len(target classes) by default)
    epochs: int
    seconds: float
    val_acc: float = math.nan  # on the trial's validation set (VAL_PER_CLASS per class): for choosing recipes
    train_loss: float = math.nan  # final MSE to the codes on its training set
    steps: int = 0         # SGD steps taken
    capped: bool = False   # ended at the training budget without fitting its training set (StoppingRule)
    stopped: bool = False  # the stop event cut the run short: not a result, never written

    @property
    def cell(self) -> Cell:
        return Cell(self.n, self.k, self.trial)


FIELDS = tuple(f.name for f in fields(RunResult) if f.name != "stopped")


def grid(levels, samples, trials: int) -> list[Cell]:
    """Trial-major, so after the first trial every (n, k) has one result to look at."""
    return [Cell(n, k, t) for t in range(trials) for k in samples for n in levels]


def run_seed(seed: int, cell: Cell) -> int:
    """Seed of one run's fresh upper levels and batch order: depends on the trial only, so
    within a trial every n and k starts from the same initialisation (a paired comparison)."""
    return seed * 1000 + cell.trial


def run_cell(source: Net, ds: CharacterSet, target_classes, cell: Cell, recipe: Recipe = TRANSFER_RECIPE,
             seed: int = 0, *, stop: threading.Event | None = None, on_epoch=None,
             cache_frozen: bool = True, device=None, test_per_class: int = TEST_PER_CLASS,
             val_per_class: int = VAL_PER_CLASS) -> RunResult:
    """The plain reference path: one transfer run, scored on the fixed test set (test_per_class per class)."""
    split = transfer_split(ds, target_classes, cell.k, cell.trial, seed, test_per_class,
                           source_classes=source.classes, val_per_class=val_per_class)
    s = run_seed(seed, cell)
    _, fit = train_transfer(source, split, cell.n, recipe.replace(seed=s), stop=stop, on_epoch=on_epoch,
                            cache_frozen=cache_frozen, device=device)
    return RunResult(cell.n, cell.k, cell.trial, s, float(fit.train_acc), float(fit.test_acc),
                     int(fit.epochs), round(float(fit.seconds), 3),
                     float("nan") if fit.val_acc is None else float(fit.val_acc), float(fit.train_loss),
                     int(fit.steps), bool(fit.capped), stopped=fit.stopped)
