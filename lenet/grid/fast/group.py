"""Train a group of transfer runs with the same retained levels n as one batched model.

Mirrors `lenet.core.train.fit` run by run: each run keeps its own seeded batch order
(a new torch.randperm per epoch), its own mini-batches of recipe.batch_size (the last
one of an epoch may be shorter), SGD + momentum, and fit's stopping rule evaluated on
its whole training set after each of its epochs. Runs with different k have epochs of
different lengths; each run simply starts its next epoch when its own one ends. A run
that stops leaves the group (regrouping), and its test accuracy is evaluated then: only
the final test accuracy is reported, so the test set is evaluated once per run.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from lenet.core.codes import decode
from lenet.config import Recipe
from lenet.core.train import StoppingRule, TrainingError
from lenet.grid.fast.stacked import StackedUpper

EVAL_CHUNK = 4096  # rows (runs x samples) per evaluation forward, to bound memory


@dataclass
class RunState:
    key: int                 # caller's id for the run
    offset: int              # first row of its training set in the group's feature tensor
    n_train: int
    codes: torch.Tensor      # (C, 20)
    y: torch.Tensor          # (n_train,) labels
    generator: torch.Generator
    order: torch.Tensor | None = None
    pos: int = 0
    epoch: int = 0
    best_loss: float = math.inf
    since_best: int = 0
    train_loss: float = math.nan
    train_acc: float = math.nan
    val_offset: int = 0      # first row of its validation set in the group's validation features
    y_val: torch.Tensor | None = None
    best_val: float = -1.0   # recipe.val_patience: best validation accuracy so far, and epochs since
    since_val: int = 0
    best_epoch: int = 0
    budget: int = 0          # StoppingRule.epochs of its training set
    h_test: torch.Tensor | None = None  # its own test inputs when its frozen levels are its own (else the group's)


@dataclass
class Finished:
    key: int
    train_acc: float
    test_acc: float
    epochs: int
    seconds: float           # wall time of the group until this run stopped
    val_acc: float = math.nan
    train_loss: float = math.nan
    steps: int = 0
    capped: bool = False     # ended at its budget without fitting its training set
    weights: dict | None = None  # its final trained parameters (name -> tensor), when train_group keeps them


@torch.no_grad()
def _evaluate(model: StackedUpper, rows: list[int], inputs: list[torch.Tensor],
              weights: dict[str, torch.Tensor] | None = None) -> list[torch.Tensor]:
    """F6 outputs of runs `rows` (indexes into the group) on their own inputs (N_r, *shape),
    with the group's current parameters or the stacked `weights` given."""
    idx = torch.tensor(rows, dtype=torch.long)
    params = model.subset(rows) if weights is None else {k: v.index_select(0, idx) for k, v in weights.items()}
    n = max(len(x) for x in inputs)
    step = max(1, EVAL_CHUNK // len(rows))
    outs = []
    for i in range(0, n, step):
        buf = inputs[0].new_zeros(min(step, n - i), len(rows), *inputs[0].shape[1:])  # zero rows pad short sets
        for j, x in enumerate(inputs):
            c = x[i:i + step]
            buf[:len(c), j] = c
        outs.append(model.forward(buf, params))  # (len(rows), chunk, 20)
    out = torch.cat(outs, 1)
    return [out[j, :len(x)] for j, x in enumerate(inputs)]


def _acc(out: torch.Tensor, codes: torch.Tensor, y: torch.Tensor) -> float:
    return (decode(out, codes) == y).float().mean().item()


def train_group(model: StackedUpper, runs: list[RunState], h_train: torch.Tensor, h_test: torch.Tensor,
                y_test: torch.Tensor, recipe: Recipe, should_stop: Callable[[], bool],
                h_val: torch.Tensor | None = None, keep_weights: bool = False) -> Iterator[Finished]:
    """Yield each run's result as it stops. h_train: every run's cached training inputs, concatenated;
    h_val likewise their validation inputs (rows val_offset.. of each run, len(run.y_val)); a run's own
    h_test replaces the group's. keep_weights: each result carries its run's final parameters."""
    recipe.validate()
    rule = StoppingRule(recipe)
    for r in runs:
        r.budget = rule.epochs(r.n_train)
    t0 = time.perf_counter()
    B = recipe.batch_size
    targets = torch.cat([r.codes[r.y] for r in runs])  # (sum n_train, 20) aligned with h_train
    use_val = recipe.val_patience > 0 and h_val is not None
    best = {k: v.detach().clone() for k, v in model.params.items()} if use_val else None
    active = list(runs)

    def val_inputs(js: list[int]) -> list[torch.Tensor]:
        return [h_val[active[j].val_offset:active[j].val_offset + len(active[j].y_val)] for j in js]

    def test_inputs(js: list[int]) -> list[torch.Tensor]:
        return [h_test if active[j].h_test is None else active[j].h_test for j in js]

    def train_inputs(js: list[int]) -> list[torch.Tensor]:
        return [h_train[active[j].offset:active[j].offset + active[j].n_train] for j in js]

    while active:
        if should_stop():
            return
        idx = torch.empty(len(active), B, dtype=torch.long)
        weight = torch.zeros(len(active), B, 1)
        for j, r in enumerate(active):
            if r.pos == 0:
                r.order = torch.randperm(r.n_train, generator=r.generator)
            sl = r.order[r.pos:r.pos + B]
            m = len(sl)
            idx[j, :m] = sl + r.offset
            idx[j, m:] = r.offset  # padding rows: weight 0, so no gradient
            weight[j, :m] = 1.0 / (m * targets.shape[1])  # mse_loss's mean within each run
            r.pos += m
        model.train_step(h_train, idx, targets.index_select(0, idx.view(-1)).view(len(active), B, -1),
                         weight.view(len(active), B), recipe.lr, recipe.momentum)

        ended = [j for j, r in enumerate(active) if r.pos >= r.n_train]
        if not ended:
            continue
        outs = _evaluate(model, ended, train_inputs(ended))
        val_outs = _evaluate(model, ended, val_inputs(ended)) if use_val else [None] * len(ended)
        done = []
        for j, out, vout in zip(ended, outs, val_outs):
            r = active[j]
            r.pos, r.epoch = 0, r.epoch + 1
            r.train_loss = torch.nn.functional.mse_loss(out, r.codes[r.y]).item()
            r.train_acc = _acc(out, r.codes, r.y)
            if not math.isfinite(r.train_loss):
                raise TrainingError(f"the training loss became {r.train_loss} at epoch {r.epoch}; "
                                    f"try a smaller learning rate (lr={recipe.lr})")
            if r.train_loss < r.best_loss - recipe.min_delta:
                r.best_loss, r.since_best = r.train_loss, 0
            else:
                r.since_best += 1
            if use_val:
                val_acc = _acc(vout, r.codes, r.y_val)
                if val_acc > r.best_val:
                    r.best_val, r.since_val, r.best_epoch = val_acc, 0, r.epoch
                    for k, v in model.params.items():
                        best[k][j] = v.detach()[j]
                else:
                    r.since_val += 1
            stop_now = rule.stops(r.epoch, r.budget, r.train_acc, r.train_loss, r.since_best, r.since_val)
            if stop_now:
                done.append(j)
        if not done:
            continue
        if use_val:  # keep each run's best validation epoch, as fit does
            restore = [j for j in done if active[j].best_epoch != active[j].epoch]
            if restore:
                for j, out in zip(restore, _evaluate(model, restore, train_inputs(restore), best)):
                    active[j].train_acc = _acc(out, active[j].codes, active[j].y)
            test_outs = _evaluate(model, done, test_inputs(done), best)
            val_accs = [active[j].best_val for j in done]
        else:
            test_outs = _evaluate(model, done, test_inputs(done))
            val_accs = [_acc(o, active[j].codes, active[j].y_val) for j, o in
                        zip(done, _evaluate(model, done, val_inputs(done)))] if h_val is not None \
                else [math.nan] * len(done)
        seconds = time.perf_counter() - t0
        final = (best if use_val else model.params) if keep_weights else None
        for j, out, val_acc in zip(done, test_outs, val_accs):
            r = active[j]
            yield Finished(r.key, r.train_acc, _acc(out, r.codes, y_test), r.epoch, seconds, val_acc,
                           r.train_loss, r.epoch * math.ceil(r.n_train / B),
                           rule.capped(r.epoch, r.budget, r.train_acc, r.train_loss),
                           {k: v.detach()[j].clone() for k, v in final.items()} if final is not None else None)
        keep = [j for j in range(len(active)) if j not in set(done)]
        if keep:
            model.keep(keep)
            if best is not None:
                kidx = torch.tensor(keep, dtype=torch.long)
                best = {k: v.index_select(0, kidx) for k, v in best.items()}
        active = [active[j] for j in keep]
