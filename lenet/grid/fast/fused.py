"""Every run of a grid as one model, all n and all k together, trained in lock-step on one device.

Run r is a whole LeNet-5 built exactly as `lenet.core.transfer.transfer(source, n_r, seed_r)` builds
it: its bottom n_r levels are the source net's and never move (their update is masked out),
the levels above start from the run's own initialisation. One step trains every run on its
own next mini-batch. What the group path (`group.py`) decides on the host, this one decides
on the device, so a GPU step never waits for the host:
  * each run's batch order (its seeded torch.randperm per epoch, as `fit` draws it) is laid
    out up front as a schedule of row indexes, SYNC_STEPS steps at a time;
  * at the end of each run's epoch its training set (and validation set, for val_patience)
    is evaluated and `fit`'s stopping rules applied as tensor operations (each run's best
    validation epoch kept as `fit` keeps it); a run that stops keeps its parameters from then on;
  * every SYNC_STEPS steps the host reads which runs stopped, scores them on the test set,
    reports them and drops them from the group.
Convolutions are unfold + batched matmul over the runs, not grouped convolutions (cuDNN and
oneDNN run one group at a time). The data of every run stays on the device. On the CPU the
same code runs (tests compare it with the plain path); there the process pool of group.py
is faster, so it is the default, and this is the default on CUDA.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from lenet.core.codes import transfer_codes
from lenet.config import LAYERS, N_CLASSES, Recipe
from lenet.data import to_net_input
from lenet.config import TANH_A, TANH_S
from lenet.core.model import LeNet5
from lenet.core.train import StoppingRule, TrainingError, sgd_momentum
from lenet.core.transfer import transfer
from lenet.grid.fast.group import Finished
from lenet.grid.fast.stacked import PARAMS
from lenet.grid.fast.work import RunSpec, Shared

SYNC_STEPS = 200   # steps between two looks of the host at the device (stop, progress, regrouping)
EVAL_ROWS = 2048   # rows (runs x samples) per evaluation forward, to bound memory


def _tanh(x: torch.Tensor) -> torch.Tensor:
    return TANH_A * torch.tanh(x * TANH_S)


def forward(p: dict[str, torch.Tensor], x: torch.Tensor, c3_index: torch.Tensor) -> torch.Tensor:
    """F6 outputs (G, N, 20) of G whole nets, each on its own N images x (G, N, 1, 32, 32)."""
    G, N = x.shape[:2]
    cols = F.unfold(x.reshape(G * N, 1, 32, 32), 5).view(G, N, 25, 784)
    h = p["c1.weight"].view(G, 1, 6, 25) @ cols + p["c1.bias"].view(G, 1, 6, 1)  # (G, N, 6, 784)
    h = _tanh(h).view(G * N, 6, 28, 28)
    h = F.avg_pool2d(h, 2).view(G, N, 6, 14, 14) * (4.0 * p["s2.coef"].view(G, 1, 6, 1, 1)) \
        + p["s2.bias"].view(G, 1, 6, 1, 1)
    h = _tanh(h)
    w3 = p["c3.kernels"].new_zeros(G, 96, 5, 5).index_copy(1, c3_index, p["c3.kernels"]).view(G, 1, 16, 150)
    cols = F.unfold(h.view(G * N, 6, 14, 14), 5).view(G, N, 150, 100)
    h = _tanh(w3 @ cols + p["c3.bias"].view(G, 1, 16, 1)).view(G * N, 16, 10, 10)  # (G*N, 16, 10, 10)
    h = F.avg_pool2d(h, 2).view(G, N, 16, 5, 5) * (4.0 * p["s4.coef"].view(G, 1, 16, 1, 1)) \
        + p["s4.bias"].view(G, 1, 16, 1, 1)
    h = _tanh(h).view(G, N, 400)
    h = _tanh(torch.baddbmm(p["c5.bias"].unsqueeze(1), h, p["c5.weight"].view(G, 120, 400).transpose(1, 2)))
    return _tanh(torch.baddbmm(p["f6.bias"].unsqueeze(1), h, p["f6.weight"].transpose(1, 2)))  # (G, N, 20)


def _decode(out: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(G, N) index of the nearest code; out (G, N, 20), codes (G, C, 20)."""
    return torch.cdist(out, codes).argmin(-1)


class FusedGrid:
    """The stacked parameters, momentum and stopping state of the runs still training."""

    def __init__(self, nets: list[LeNet5], levels: list[int], device: torch.device):
        self.c3_index = nets[0].c3.index.to(device)
        self.params = {f"{layer}.{p}": torch.stack([getattr(getattr(net, layer), p).detach() for net in nets])
                       .to(device).requires_grad_(True) for layer in LAYERS for p in PARAMS[layer]}
        self.momentum = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.best: dict[str, torch.Tensor] | None = None  # recipe.val_patience: each run's best validation epoch
        n = torch.tensor(levels, device=device)
        # trains[layer]: (R,) 1 where the run learns that layer (its level index >= n)
        self.trains = {layer: (n <= i).float() for i, layer in enumerate(LAYERS)}

    def select(self, rows: torch.Tensor) -> None:
        self.params = {k: v.detach().index_select(0, rows).requires_grad_(True) for k, v in self.params.items()}
        self.momentum = {k: v.index_select(0, rows) for k, v in self.momentum.items()}
        self.trains = {k: v.index_select(0, rows) for k, v in self.trains.items()}
        if self.best is not None:
            self.best = {k: v.index_select(0, rows) for k, v in self.best.items()}

    def keep_best(self, rows: torch.Tensor, better: torch.Tensor) -> None:
        """Copy the current parameters of runs `rows` where `better` into the best-epoch weights."""
        for k, v in self.params.items():
            b = better.view(-1, *[1] * (v.dim() - 1))
            self.best[k].index_copy_(0, rows, torch.where(b, v.detach().index_select(0, rows),
                                                          self.best[k].index_select(0, rows)))

    def sgd_step(self, loss: torch.Tensor, lr: float, momentum: float, active: torch.Tensor) -> None:
        """torch.optim.SGD's step (buf = m*buf + g; p -= lr*buf) where the run trains the layer
        and has not stopped; elsewhere the parameters stay exactly as they are."""
        names = list(self.params)
        params, bufs = [self.params[k] for k in names], [self.momentum[k] for k in names]
        grads = torch.autograd.grad(loss, params)
        scale = [(self.trains[k.split(".")[0]] * active).view(-1, *[1] * (p.dim() - 1)) for k, p in zip(names, params)]
        sgd_momentum(params, grads, bufs, lr, momentum, scale)  # foreach: a few kernel launches for all twelve tensors


class _Schedule:
    """One run's row indexes, `fit`'s orders (one torch.randperm per epoch from the run's generator), drawn an
    epoch at a time as the windows reach them: a budget of many epochs costs no memory up front."""

    def __init__(self, n_train: int, batch: int, epochs: int, generator: torch.Generator, offset: int):
        self.n, self.batch, self.epochs, self.generator, self.offset = n_train, batch, epochs, generator, offset
        self.spe = math.ceil(n_train / batch)
        self.first = 0                                   # the step the held rows start at
        self.rows = np.empty((0, batch), np.int64)

    def window(self, start: int, length: int) -> np.ndarray:
        """(length, batch) rows of steps start..start+length, -1 where an epoch's last batch is short and
        past the budget's end. Windows move forward only: rows before `start` are dropped."""
        drop = min(start - self.first, len(self.rows)) // self.spe * self.spe
        self.rows, self.first = self.rows[drop:], self.first + drop
        want = min(self.epochs * self.spe, start + length)
        epochs = []
        for _ in range(max(0, math.ceil((want - self.first - len(self.rows)) / self.spe))):
            e = np.full(self.spe * self.batch, -1, np.int64)
            e[:self.n] = torch.randperm(self.n, generator=self.generator).numpy() + self.offset
            epochs.append(e.reshape(self.spe, self.batch))
        self.rows = np.concatenate([self.rows, *epochs]) if epochs else self.rows
        w = self.rows[start - self.first:start - self.first + length]
        return np.concatenate([w, np.full((length - len(w), self.batch), -1)]) if len(w) < length else w


@torch.no_grad()
def _scores(model: FusedGrid, rows: torch.Tensor, x: torch.Tensor, y: torch.Tensor, codes: torch.Tensor,
            weights: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(MSE loss, accuracy) per run of `rows` (G,) on its own images x (G, N, 1, 32, 32), labels y (G, N),
    with the current parameters or the stacked `weights` given."""
    p = {k: v.detach().index_select(0, rows) for k, v in (model.params if weights is None else weights).items()}
    G, N = y.shape
    step = max(1, EVAL_ROWS // G)
    outs = torch.cat([forward(p, x[:, i:i + step], model.c3_index) for i in range(0, N, step)], 1)
    target = torch.gather(codes, 1, y.unsqueeze(-1).expand(-1, -1, codes.shape[-1]))  # (G, N, 20)
    loss = ((outs - target) ** 2).mean((1, 2))
    acc = (_decode(outs, codes) == y).float().mean(1)
    return loss, acc


def _blocks(starts: list[int], sizes: list[int], device) -> dict[int, tuple[list[int], torch.Tensor]]:
    """Runs grouped by set size: {size: (positions, (G, size) row indexes)} for batched evaluation."""
    out: dict[int, list[int]] = {}
    for j, s in enumerate(sizes):
        out.setdefault(s, []).append(j)
    return {s: (js, torch.stack([torch.arange(starts[j], starts[j] + s) for j in js]).to(device))
            for s, js in out.items()}


def _accuracy(model: FusedGrid, rows: torch.Tensor, starts: list[int], sizes: list[int], X, Y, codes,
              weights=None) -> torch.Tensor:
    """Accuracy (float64) of each run in `rows` on its own set: rows starts[j]..+sizes[j] of X, Y."""
    acc = torch.empty(len(sizes), dtype=torch.float64, device=X.device)
    for js, data in _blocks(starts, sizes, X.device).values():
        pos = torch.tensor(js, device=X.device)
        acc[pos] = _scores(model, rows.index_select(0, pos), X[data], Y[data], codes.index_select(0, pos),
                           weights)[1].double()
    return acc


def run_fused(shared: Shared, runs: list[tuple[int, RunSpec]], device: torch.device,
              should_stop: Callable[[], bool]) -> Iterator[Finished]:
    """Train every (n, spec) run as one FusedGrid on `device`; yield each run's result once its stop is seen."""
    recipe = Recipe.from_dict(shared.recipe)
    rule = StoppingRule(recipe)
    t0 = time.perf_counter()
    source = LeNet5(n_outputs=shared.n_outputs)
    source.load_state_dict(shared.source_state)
    nets, levels, codes, offsets, sizes, scheds = [], [], [], [], [], []
    images, labels, offset = [], [], 0
    has_val = all(spec.val_images is not None for _, spec in runs)
    val_images, val_labels, val_offsets, val_sizes = [], [], [], []
    for n, spec in runs:
        nets.append(transfer(source, n, seed=spec.seed))
        levels.append(n)
        codes.append(transfer_codes(recipe.code_kind, shared.n_classes, spec.seed, N_CLASSES))
        sizes.append(len(spec.labels))
        scheds.append(_Schedule(len(spec.labels), recipe.batch_size, rule.epochs(len(spec.labels)),
                                torch.Generator().manual_seed(spec.seed), offset))
        offsets.append(offset)
        images.append(spec.images)
        labels.append(spec.labels)
        offset += len(spec.labels)
        if has_val:
            val_offsets.append(sum(val_sizes))
            val_sizes.append(len(spec.val_labels))
            val_images.append(spec.val_images)
            val_labels.append(spec.val_labels)
    dev = device
    model = FusedGrid(nets, levels, dev)
    X = to_net_input(np.concatenate(images)).to(dev)                    # (sum n_train, 1, 32, 32)
    Y = torch.from_numpy(np.concatenate(labels)).to(dev)
    codes_t = torch.stack(codes).to(dev)                                # (R, C, 20)
    run_of_row = torch.repeat_interleave(torch.arange(len(runs)), torch.tensor(sizes)).to(dev)
    T = codes_t[run_of_row, Y]                                          # (sum n_train, 20) each row's target
    X_test = to_net_input(shared.test_images).to(dev)
    y_test = torch.from_numpy(shared.test_labels).to(dev)
    XV = to_net_input(np.concatenate(val_images)).to(dev) if has_val else None
    YV = torch.from_numpy(np.concatenate(val_labels)).to(dev) if has_val else None
    use_val = recipe.val_patience > 0 and has_val
    if use_val:
        model.best = {k: v.detach().clone() for k, v in model.params.items()}

    R = len(runs)
    keys = [spec.key for _, spec in runs]
    spe = [math.ceil(s / recipe.batch_size) for s in sizes]
    ids = list(range(R))                                  # original index of each run still in the group
    f64 = dict(dtype=torch.float64, device=dev)           # float64, as fit's Python floats
    state = {"active": torch.ones(R, device=dev), "epoch": torch.zeros(R, dtype=torch.long, device=dev),
             "best": torch.full((R,), math.inf, **f64), "since": torch.zeros(R, dtype=torch.long, device=dev),
             "train_acc": torch.full((R,), math.nan, **f64), "bad": torch.zeros(R, dtype=torch.bool, device=dev),
             "best_val": torch.full((R,), -1.0, **f64), "since_val": torch.zeros(R, dtype=torch.long, device=dev),
             "train_loss": torch.full((R,), math.nan, **f64),
             "budget": torch.tensor([rule.epochs(s) for s in sizes], device=dev)}
    B, step = recipe.batch_size, 0
    while ids:
        # the next SYNC_STEPS steps of every run: row indexes (S, R, B) and per-row loss weights
        chunk = np.stack([scheds[i].window(step, SYNC_STEPS) for i in ids], 1)
        valid = chunk >= 0
        m = valid.sum(-1, keepdims=True)
        weight = torch.from_numpy(np.where(valid, 1.0 / (np.maximum(m, 1) * T.shape[1]), 0.0)).float().to(dev)
        idx = torch.from_numpy(np.where(valid, chunk, 0)).to(dev)
        ends = _blocks([offsets[i] for i in ids], [sizes[i] for i in ids], dev)  # runs whose epochs end together
        ends = {s: (js, torch.tensor(js, device=dev), data, codes_t[[ids[j] for j in js]],
                    torch.stack([torch.arange(val_offsets[ids[j]], val_offsets[ids[j]] + val_sizes[ids[j]])
                                 for j in js]).to(dev) if use_val else None)
                for s, (js, data) in ends.items()}
        for c in range(SYNC_STEPS):
            if should_stop():
                return
            rows = idx[c]                                                  # (R, B)
            x = X[rows.reshape(-1)].view(len(ids), B, 1, 32, 32)
            out = forward(model.params, x, model.c3_index)                 # (R, B, 20)
            loss = (((out - T[rows.reshape(-1)].view(len(ids), B, -1)) ** 2) * weight[c].unsqueeze(-1)).sum()
            model.sgd_step(loss, recipe.lr, recipe.momentum, state["active"])
            step += 1
            for js, g, data, codes_g, vdata in ends.values():
                if step % spe[ids[js[0]]] == 0 and step // spe[ids[js[0]]] <= rule.epochs(sizes[ids[js[0]]]):
                    _epoch_end(model, rule, state, g, X[data], Y[data], codes_g,
                               None if vdata is None else (XV[vdata], YV[vdata]))
        if bool(state["bad"].any()):
            j = int(state["bad"].nonzero()[0, 0])
            raise TrainingError(f"the training loss became nan or inf at epoch {int(state['epoch'][j])}; "
                                f"try a smaller learning rate (lr={recipe.lr})")
        done = (state["active"] == 0).nonzero().flatten()
        if len(done):
            seconds = time.perf_counter() - t0
            js = done.tolist()
            codes_d = codes_t[[ids[j] for j in js]]
            train_acc = state["train_acc"][done]
            if use_val:  # keep each run's best validation epoch, as fit does
                train_acc = _accuracy(model, done, [offsets[ids[j]] for j in js], [sizes[ids[j]] for j in js],
                                      X, Y, codes_d, model.best)
                val_acc = state["best_val"][done]
            elif has_val:
                val_acc = _accuracy(model, done, [val_offsets[ids[j]] for j in js], [val_sizes[ids[j]] for j in js],
                                    XV, YV, codes_d)
            else:
                val_acc = torch.full((len(js),), math.nan)
            _, test_acc = _scores(model, done, X_test.expand(len(js), *X_test.shape), y_test.expand(len(js), -1),
                                  codes_d, model.best)
            capped = rule.capped(state["epoch"][done], state["budget"][done], state["train_acc"][done],
                                 state["train_loss"][done])
            for j, acc, tr, ep, va, loss, cap in zip(js, test_acc.tolist(), train_acc.tolist(),
                                                     state["epoch"][done].tolist(), val_acc.tolist(),
                                                     state["train_loss"][done].tolist(), capped.tolist()):
                yield Finished(keys[ids[j]], tr, acc, ep, seconds, va, loss, ep * spe[ids[j]], cap)
            keep = (state["active"] > 0).nonzero().flatten()
            model.select(keep)
            state = {k: v.index_select(0, keep) for k, v in state.items()}
            ids = [ids[j] for j in keep.tolist()]


def _epoch_end(model: FusedGrid, rule: StoppingRule, state: dict[str, torch.Tensor], g: torch.Tensor,
               x: torch.Tensor, y: torch.Tensor, codes: torch.Tensor, val) -> None:
    """fit's end of epoch for runs `g` (positions in the group), as tensor operations: evaluate the
    training set (and validation set), apply the stopping rule, keep the best validation epoch."""
    loss, acc = (t.double() for t in _scores(model, g, x, y, codes))
    old = {k: v.index_select(0, g) for k, v in state.items()}
    on = old["active"] > 0
    ep = old["epoch"] + 1
    improved = loss < old["best"] - rule.recipe.min_delta
    since = torch.where(improved, 0, old["since"] + 1)
    bad = on & ~torch.isfinite(loss)
    new = {"epoch": ep, "best": torch.where(improved, loss, old["best"]), "since": since, "train_acc": acc,
           "train_loss": loss}
    since_val = old["since_val"]
    if val is not None:
        val_acc = _scores(model, g, *val, codes)[1].double()
        better = on & (val_acc > old["best_val"])
        since_val = torch.where(better, 0, old["since_val"] + 1)
        new.update(best_val=torch.where(better, val_acc, old["best_val"]), since_val=since_val)
        model.keep_best(g, better)
    stop = rule.stops(ep, old["budget"], acc, loss, since, since_val)
    for k, v in new.items():
        state[k].index_copy_(0, g, torch.where(on, v, old[k]))
    state["bad"].index_copy_(0, g, old["bad"] | bad)
    state["active"].index_copy_(0, g, torch.where(on & (stop | bad), 0.0, old["active"]))
