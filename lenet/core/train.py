"""One `fit` for every caller: the CLI, the app's background jobs and the benchmarks.

The trainer knows nothing of any UI. Observers attach through `on_step` and
`on_epoch` callbacks (that is where a live chart or progress bar plugs in) and
a `stop` event ends training between two mini-batches.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from lenet.core.codes import decode
from lenet.config import Recipe
from lenet.device import resolve
from lenet.core.transfer import retained_levels


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite)."""


@dataclass(frozen=True)
class StoppingRule:
    """The one stopping rule of `fit`, the fast path's groups and the fused grid, from a Recipe.

    Checked at the end of each epoch on the whole training set. A run stops at its budget
    (`epochs`: recipe.max_epochs, or fewer where recipe.max_steps SGD steps are reached
    first), once it has fitted its training set (accuracy >= target_train_acc, or MSE <=
    target_train_loss with accuracy >= loss_needs_acc), after `patience` epochs without a
    lower training loss, or after `val_patience` epochs without a better validation accuracy. The tests take floats
    (fit, groups) or per-run tensors (the fused grid) alike.
    """
    recipe: Recipe

    def epochs(self, n_train: int) -> int:
        """The budget in epochs of a training set of n_train samples."""
        return self.budget(math.ceil(n_train / self.recipe.batch_size))

    def budget(self, steps_per_epoch: int) -> int:
        """The budget in epochs at this many SGD steps per epoch."""
        r = self.recipe
        if not r.max_steps:
            return r.max_epochs
        return min(r.max_epochs, max(1, math.ceil(r.max_steps / steps_per_epoch)))

    def fitted(self, train_acc, train_loss):
        r = self.recipe
        return (train_acc >= r.target_train_acc) | ((train_loss <= r.target_train_loss)
                                                    & (train_acc >= r.loss_needs_acc))

    def stops(self, epoch, budget, train_acc, train_loss, since_best, since_val=0):
        """Whether a run stops after `epoch` (budget: `epochs(n_train)`); since_best and since_val
        count the epochs since its last lower training loss and better validation accuracy."""
        r = self.recipe
        stop = (epoch >= budget) | self.fitted(train_acc, train_loss)
        if r.patience > 0:
            stop = stop | (since_best >= r.patience)
        if r.val_patience > 0:
            stop = stop | (since_val >= r.val_patience)
        return stop

    def reason(self, epoch, budget, train_acc, train_loss, since_best, since_val=0) -> str | None:
        """The first rule that ends a run after `epoch` (one run, floats), in plain words as a clause;
        None while it goes on. `stops` is the same test, for many runs at once."""
        r = self.recipe
        if train_acc >= r.target_train_acc:
            return f"training accuracy reached {r.target_train_acc:.1%}, the recipe's target"
        if train_loss <= r.target_train_loss and train_acc >= r.loss_needs_acc:
            return (f"the training loss fell to {r.target_train_loss:g}, the recipe's target: the outputs "
                    f"are close to their codes, so more epochs would only memorise the samples")
        if epoch >= budget:
            if epoch >= r.max_epochs:
                return f"it reached the maximum of {r.max_epochs} epochs"
            return f"it used its training budget of {r.max_steps:,} SGD steps"
        if r.patience > 0 and since_best >= r.patience:
            return f"the training loss had not fallen for {r.patience} epochs"
        if r.val_patience > 0 and since_val >= r.val_patience:
            return f"the validation accuracy had not risen for {r.val_patience} epochs"
        return None

    def capped(self, epoch, budget, train_acc, train_loss):
        """Whether a run that stopped after `epoch` ended at its budget without fitting its training set."""
        fitted = self.fitted(train_acc, train_loss)
        if isinstance(fitted, torch.Tensor):
            return (epoch >= budget) & ~fitted
        return epoch >= budget and not fitted


@dataclass
class EpochStats:
    epoch: int
    step: int
    train_loss: float
    train_acc: float
    test_acc: float | None  # None on epochs where the test set was not evaluated
    seconds: float          # since fit started
    val_acc: float | None = None  # None on epochs where the validation set was not evaluated


@dataclass
class FitResult:
    epochs: int
    train_loss: float
    train_acc: float
    test_acc: float | None
    seconds: float
    stopped: bool                 # the stop event ended training early
    steps: int = 0                # SGD steps taken
    capped: bool = False          # ended at the budget without fitting its training set (StoppingRule)
    history: list[EpochStats] = field(default_factory=list)
    val_acc: float | None = None  # of the returned weights, when a validation set was given
    best_epoch: int | None = None  # the epoch whose weights were kept (recipe.val_patience > 0)

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, codes: torch.Tensor, level: int = 0,
            batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, predicted class) for inputs x entering the net above `level`."""
    was_training = model.training
    model.eval()
    outs = torch.cat([model.forward_from(x[i:i + batch], level) for i in range(0, len(x), batch)]) \
        if len(x) else torch.zeros(0, codes.shape[1])
    model.train(was_training)
    return outs, decode(outs, codes)


def evaluate(model, x, y, codes, level: int = 0) -> tuple[float, float]:
    """(MSE loss to the codes, accuracy) of the model on (x, y)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    outs, pred = predict(model, x, codes, level)
    loss = F.mse_loss(outs, codes[y]).item()
    return loss, (pred == y).float().mean().item()


@torch.no_grad()
def frozen_features(model, x: torch.Tensor, level: int, batch: int = 2000) -> torch.Tensor:
    """Outputs of the frozen bottom levels; they never change while the rest trains."""
    if level == 0:
        return x
    return torch.cat([model.forward_to(x[i:i + batch], level) for i in range(0, len(x), batch)])


def fit(model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, codes: torch.Tensor,
        recipe: Recipe, x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None, *,
        x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None,
        on_step: Callable[[int, float], None] | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None,
        stop: threading.Event | None = None, cache_frozen: bool = True, device=None,
        scored: int | None = None) -> FitResult:
    """Train the model's trainable parameters with SGD + momentum on MSE to the codes.

    Stops by `StoppingRule(recipe)` (the budget, a fitted training set, patience on the
    training loss or the validation accuracy; with `val_patience` the best validation epoch's
    weights are kept), or when `stop` is set. The validation set is evaluated every epoch only
    for `val_patience`; otherwise once, at the end. `cache_frozen` runs the frozen bottom levels once instead of
    every step (same result). `device` (see lenet.device; None reads LENET_DEVICE) is where
    it trains; the model is handed back on the device it came from. `scored`: the training loss and
    accuracy that the stopping rule reads are measured on the first `scored` training samples only
    (the source net's scanned characters, ahead of their drawn copies; None: all of them).
    """
    recipe.validate()
    if len(x_train) == 0:
        raise ValueError("the training set is empty")
    dev = resolve(device)
    home = next(model.parameters()).device
    model.to(dev)
    try:
        return _fit(model, x_train.to(dev), y_train.to(dev), codes.to(dev), recipe,
                    *(None if t is None else t.to(dev) for t in (x_test, y_test, x_val, y_val)),
                    on_step, on_epoch, stop, cache_frozen, scored)
    finally:
        model.to(home)


@torch.no_grad()
def sgd_momentum(params: list[torch.Tensor], grads, bufs: list[torch.Tensor], lr: float, momentum: float,
                 scale: list[torch.Tensor] | None = None) -> None:
    """The one SGD update: torch.optim.SGD's with momentum (no dampening, no weight decay),
    buf = momentum * buf + g; p -= lr * buf, the buffers starting at zero (so the first is g, as
    torch's). `scale` (a tensor per parameter, broadcast over it) multiplies each step: 0 leaves
    those parameters exactly as they are (the fused path's untrained levels and stopped runs).
    `fit`, the fast path's stacked runs and the fused GPU path all step through it; the numba
    steps (lenet.kernels.step.sgd) are the same update as a kernel, tested against this."""
    torch._foreach_mul_(bufs, momentum)
    torch._foreach_add_(bufs, list(grads))
    if scale is None:
        torch._foreach_add_(params, bufs, alpha=-lr)
    else:
        torch._foreach_add_(params, torch._foreach_mul(bufs, [s * -lr for s in scale]))


def _fit(model, x_train, y_train, codes, recipe, x_test, y_test, x_val, y_val, on_step, on_epoch, stop,
         cache_frozen, scored=None) -> FitResult:
    level = retained_levels(model) if cache_frozen else 0
    h_train = frozen_features(model, x_train, level)
    h_test = frozen_features(model, x_test, level) if x_test is not None and len(x_test) else None
    h_val = frozen_features(model, x_val, level) if x_val is not None and len(x_val) else None
    use_val = recipe.val_patience > 0 and h_val is not None
    params = [p for p in model.parameters() if p.requires_grad]  # frozen levels never reach the optimiser
    if not params:
        raise ValueError("the model has no trainable parameters")
    bufs = [torch.zeros_like(p) for p in params]  # SGD's momentum buffers
    fused = None  # a `lanes` net trained whole on the CPU (the source net): one numba call per step
    if getattr(model, "lanes", False):
        from lenet.kernels.step import source_step  # numba loads only when a lanes net trains
        fused = source_step(model, level, recipe.lr, recipe.momentum, recipe.batch_size, h_train.device)
    g = torch.Generator().manual_seed(recipe.seed)
    targets = codes[y_train]
    n = len(h_train)
    t0 = time.perf_counter()
    history: list[EpochStats] = []
    rule = StoppingRule(recipe)
    budget = rule.epochs(len(h_train))
    step, best_loss, since_best, stopped = 0, math.inf, 0, False
    best_val, since_val, best_epoch, best_weights = -1.0, 0, None, None
    test_acc = None
    model.train()
    for epoch in range(1, budget + 1):
        order = torch.randperm(n, generator=g).to(h_train.device)  # the CPU stream: the same order on every device
        for i in range(0, n, recipe.batch_size):
            if stop is not None and stop.is_set():
                stopped = True
                break
            idx = order[i:i + recipe.batch_size]
            if fused is not None:
                loss = fused(h_train[idx], targets[idx])
            else:
                loss = F.mse_loss(model.forward_from(h_train[idx], level), targets[idx])
                sgd_momentum(params, torch.autograd.grad(loss, params), bufs, recipe.lr, recipe.momentum)
            step += 1
            if on_step is not None:
                on_step(step, loss if fused is not None else loss.item())
        if stopped and step == 0:
            break
        train_loss, train_acc = evaluate(model, h_train[:scored], y_train[:scored], codes, level)
        if not math.isfinite(train_loss):
            raise TrainingError(f"the training loss became {train_loss} at epoch {epoch}; "
                                f"try a smaller learning rate (lr={recipe.lr})")
        if train_loss < best_loss - recipe.min_delta:
            best_loss, since_best = train_loss, 0
        else:
            since_best += 1
        val_acc = None
        if use_val:
            val_acc = evaluate(model, h_val, y_val, codes, level)[1]
            if val_acc > best_val:
                best_val, since_val, best_epoch = val_acc, 0, epoch
                best_weights = [p.detach().clone() for p in params]
            else:
                since_val += 1
        done = stopped or bool(rule.stops(epoch, budget, train_acc, train_loss, since_best, since_val))
        evaluated = h_test is not None and (done or epoch % recipe.eval_every == 0)
        if evaluated:
            test_acc = evaluate(model, h_test, y_test, codes, level)[1]
        stats = EpochStats(epoch, step, train_loss, train_acc, test_acc if evaluated else None,
                           time.perf_counter() - t0, val_acc)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if done:
            break
    model.eval()
    last = history[-1] if history else EpochStats(0, 0, math.nan, math.nan, None, 0.0)
    train_loss, train_acc = last.train_loss, last.train_acc
    if best_weights is not None and best_epoch != last.epoch:  # keep the best validation epoch
        with torch.no_grad():
            for p, w in zip(params, best_weights):
                p.copy_(w)
        train_loss, train_acc = evaluate(model, h_train[:scored], y_train[:scored], codes, level)
        if h_test is not None:
            test_acc = evaluate(model, h_test, y_test, codes, level)[1]
    val_final = best_val if best_weights is not None else \
        (evaluate(model, h_val, y_val, codes, level)[1] if h_val is not None and history else None)
    return FitResult(epochs=last.epoch, train_loss=train_loss, train_acc=train_acc,
                     test_acc=test_acc, seconds=time.perf_counter() - t0, stopped=stopped,
                     history=history, val_acc=val_final, best_epoch=best_epoch, steps=step,
                     capped=not stopped and rule.capped(last.epoch, budget, last.train_acc, last.train_loss))


def warm_kernels() -> None:
    """Compile every numba kernel once (or load it from numba's cache) on a one-sample batch, through
    the fused step and through autograd: scripts/setup.sh runs this after an install, so the first
    training does not wait for the compiler (about 15 s here)."""
    from lenet.core.model import LeNet5
    from lenet.kernels import lanes
    from lenet.kernels.step import SourceStep
    if not lanes.available():
        return
    net = LeNet5(seed=0, lanes=True)
    SourceStep(net, 0.01, 0.9, 1)(torch.zeros(1, 1, 32, 32), torch.zeros(1, 20))
    net(torch.zeros(1, 1, 32, 32)).sum().backward()


def why_stopped(history: list[dict], recipe: Recipe, stopped: bool = False) -> str:
    """Why `fit` ended after these epochs (EpochStats as dicts), as a clause in plain words ("it reached
    the maximum of 100 epochs"): the history replayed through the StoppingRule that `fit` used."""
    if stopped:
        return "it was stopped by hand"
    if not history:
        return "no epoch finished"
    rule = StoppingRule(recipe)
    budget = rule.budget(max(1, history[0]["step"]))  # the first epoch's steps: steps per epoch
    best, since_best, best_val, since_val = math.inf, 0, -1.0, 0
    for h in history:  # the counters as _fit keeps them
        best, since_best = (h["train_loss"], 0) if h["train_loss"] < best - recipe.min_delta else (best, since_best + 1)
        if h.get("val_acc") is not None:
            best_val, since_val = (h["val_acc"], 0) if h["val_acc"] > best_val else (best_val, since_val + 1)
    last = history[-1]
    return rule.reason(last["epoch"], budget, last["train_acc"], last["train_loss"], since_best, since_val) \
        or "it stopped early"
