"""A whole SGD step of R stacked nets above level n (the fast path's groups) or of one whole
LeNet5 (the source net) as one numba call.

At mini-batches of 16 the lane kernels (kernels.py) take about half of a step through
PyTorch; the rest is dispatch: some forty small tensor operations, autograd's bookkeeping and
the optimiser, each costing microseconds on 16 samples. Here the whole step, gathering the
batch, forward, loss, backward and SGD with momentum, is one compiled function over the same
kernels, C5 and F6 written as dot products along their 400 and 120 inputs, every buffer
allocated once. It computes what the PyTorch steps compute (StackedUpper.sgd_step and
torch.optim.SGD: buf = momentum * buf + grad, p -= lr * buf), up to float rounding:
tests/test_fast.py and tests/test_engine.py compare them.
"""
from __future__ import annotations

import numpy as np
import torch

from lenet.config import LAYERS
from lenet.kernels import lanes as K

if K.numba is not None:
    from lenet.kernels.lanes import (
        A, INV_A, S, U, bias_tanh, corr, corr_dw, corr_dx, dz_rows, jit, pool_bwd, pool_fwd, tanh,
    )

    @jit
    def dense_fwd(x, w, b, y, nb):
        """y[i] = A tanh(S (w @ x[i] + b)) for the first nb rows; x (B, K), w (O, K)."""
        for i in range(nb):
            xi = x[U(i)]
            for o in range(w.shape[0]):
                wo = w[U(o)]
                acc = np.float32(0.0)
                for k in range(U(w.shape[1])):
                    acc += xi[k] * wo[k]
                y[U(i), U(o)] = A * tanh(S * (acc + b[U(o)]))

    @jit
    def dense_bwd(x, w, y, gy, dz, dw, db, dx, nb):
        """Backward of dense_fwd from gy: dw, db, and dx unless it is empty; dz is scratch like y."""
        for i in range(nb):
            for o in range(w.shape[0]):
                dz[U(i), U(o)] = gy[U(i), U(o)] * S * (A - y[U(i), U(o)] * y[U(i), U(o)] * INV_A)
        for o in range(w.shape[0]):
            dwo = dw[U(o)]
            for k in range(U(w.shape[1])):
                dwo[k] = 0.0
            acc = np.float32(0.0)
            for i in range(nb):
                d = dz[U(i), U(o)]
                acc += d
                xi = x[U(i)]
                for k in range(U(w.shape[1])):
                    dwo[k] += d * xi[k]
            db[U(o)] = acc
        if dx.shape[0] > 0:
            for i in range(nb):
                dxi = dx[U(i)]
                for k in range(U(w.shape[1])):
                    dxi[k] = 0.0
                for o in range(w.shape[0]):
                    d = dz[U(i), U(o)]
                    wo = w[U(o)]
                    for k in range(U(w.shape[1])):
                        dxi[k] += d * wo[k]

    @jit
    def sgd(p, g, buf, lr, momentum):
        pf, gf, bf = p.reshape(-1), g.reshape(-1), buf.reshape(-1)
        for i in range(U(pf.shape[0])):
            bf[i] = momentum * bf[i] + gf[i]
            pf[i] -= lr * bf[i]

    @jit
    def sgd_scaled(p, g, s, buf, lr, momentum):
        """sgd with each gradient entry times s (a per-level learning rate, or 0: a frozen map), as a
        gradient hook does in `fit`: buf = momentum * buf + s * g."""
        pf, gf, sf, bf = p.reshape(-1), g.reshape(-1), s.reshape(-1), buf.reshape(-1)
        for i in range(U(pf.shape[0])):
            bf[i] = momentum * bf[i] + gf[i] * sf[i]
            pf[i] -= lr * bf[i]

    @jit
    def step_kernel(h, idx, tgt, wgt, level, params, grads, bufs, ws, t1, t3, lr, momentum, scales, scaled):
        """One SGD + momentum step of R nets above `level` on their mini-batches; returns the loss.
        h (N, F): every run's inputs at `level` (the frozen levels' outputs), one row per sample;
        idx (R, B): the rows of each run's batch; tgt (R*B, 20) their targets; wgt (R*B,) each row's
        weight in the loss, sum of wgt * (out - tgt)^2 (1 / (m * 20) for a run's m real rows, 0 for padding).
        params/grads/bufs: per-run stacked parameters as 2-D arrays: c1 w (R, 150), c1 b (R, 6), s2
        coef, bias (R, 6), c3 w (R, 1500), c3 b (R, 16), s4 coef, bias (R, 16), c5 w (R*120, 400), c5 b
        (R, 120), f6 w (R*20, 120), f6 b (R, 20); the frozen levels' entries are never read. ws: flat
        scratch buffers (SCRATCH floats per run and sample each); t1, t3: C1's and C3's tables (starts, kin, kid, back_starts,
        back_kin, back_kid). scales: per-entry gradient multipliers shaped like params, read where scaled[i] is set."""
        R, nb = idx.shape
        B = U(nb)
        w1, b1, c2, s2, w3, b3, c4, s4, w5, b5, w6, b6 = params
        x0, y1, y2, y3, y4, dz1, dz3, dy1, dy2, dy3, dy4 = ws[:11]
        rows = ws[11].shape[0] // 400  # rows of the (run x sample, features) buffers
        h4, g4 = ws[11].reshape(rows, 400), ws[18].reshape(rows, 400)
        h5, g5, d5 = ws[12].reshape(rows, 120), ws[16].reshape(rows, 120), ws[17].reshape(rows, 120)
        h6, g6, d6 = ws[13].reshape(rows, 20), ws[14].reshape(rows, 20), ws[15].reshape(rows, 20)
        F = U(h.shape[1])
        if level <= 3:  # the batch into the lanes: (R, features, B)
            dst = x0 if level == 0 else (y1 if level == 1 else (y2 if level == 2 else y3))
            for r in range(R):
                for b in range(nb):
                    src = h[U(idx[r, b])]
                    base = U(r) * F * B + U(b)
                    for p in range(F):
                        dst[base + p * B] = src[p]
        else:
            dm = h4 if level == 4 else h5
            for r in range(R):
                for b in range(nb):
                    src = h[U(idx[r, b])]
                    row = dm[U(r * nb + b)]
                    for p in range(F):
                        row[p] = src[p]
        if level == 0:
            corr(x0, w1, t1[0], t1[1], t1[2], y1, 1, 32, 32, 6, 28, 28, nb)
            bias_tanh(y1, b1, 784 * nb)
        if level <= 1:
            pool_fwd(y1, c2, s2, y2, 6, 14, 14, nb)
        if level <= 2:
            corr(y2, w3, t3[0], t3[1], t3[2], y3, 6, 14, 14, 16, 10, 10, nb)
            bias_tanh(y3, b3, 100 * nb)
        if level <= 3:
            pool_fwd(y3, c4, s4, y4, 16, 5, 5, nb)
            for r in range(R):  # S4's maps out of the lanes: (R*B, 400)
                for k in range(400):
                    src = y4[U(r * 400 + k) * B:]
                    for b in range(nb):
                        h4[U(r * nb + b), U(k)] = src[U(b)]
        for r in range(R):
            lo, hi = r * nb, (r + 1) * nb
            if level <= 4:
                dense_fwd(h4[lo:hi], w5[r * 120:(r + 1) * 120], b5[r], h5[lo:hi], nb)
            dense_fwd(h5[lo:hi], w6[r * 20:(r + 1) * 20], b6[r], h6[lo:hi], nb)
        loss = 0.0
        for i in range(R * nb):
            wt = wgt[U(i)]
            for o in range(20):
                e = h6[U(i), U(o)] - tgt[U(i), U(o)]
                loss += wt * e * e
                g6[U(i), U(o)] = np.float32(2.0) * wt * e
        for r in range(R):
            lo, hi = r * nb, (r + 1) * nb
            dense_bwd(h5[lo:hi], w6[r * 20:(r + 1) * 20], h6[lo:hi], g6[lo:hi], d6[lo:hi],
                       grads[10][r * 20:(r + 1) * 20], grads[11][r], g5[lo:hi] if level <= 4 else g5[0:0], nb)
            if level <= 4:
                dense_bwd(h4[lo:hi], w5[r * 120:(r + 1) * 120], h5[lo:hi], g5[lo:hi], d5[lo:hi],
                           grads[8][r * 120:(r + 1) * 120], grads[9][r], g4[lo:hi] if level <= 3 else g4[0:0], nb)
        if level <= 3:
            for r in range(R):  # the gradient back into the lanes
                for k in range(400):
                    dst4 = dy4[U(r * 400 + k) * B:]
                    for b in range(nb):
                        dst4[U(b)] = g4[U(r * nb + b), U(k)]
            pool_bwd(y3, c4, y4, dy4, dy3 if level <= 2 else dy3[0:0], grads[6], grads[7], 16, 5, 5, nb)
        if level <= 2:
            dz_rows(y3, dy3, dz3, grads[5], 16, 10, 10, nb)
            corr_dw(y2, dz3, t3[0], t3[1], grads[4], 6, 14, 14, 16, 10, nb)
            if level <= 1:
                corr_dx(dz3, w3, t3[3], t3[4], t3[5], dy2, 6, 14, 14, 16, 10, nb)
        if level <= 1:
            pool_bwd(y1, c2, y2, dy2, dy1 if level == 0 else dy1[0:0], grads[2], grads[3], 6, 14, 14, nb)
        if level == 0:
            dz_rows(y1, dy1, dz1, grads[1], 6, 28, 28, nb)
            corr_dw(x0, dz1, t1[0], t1[1], grads[0], 1, 32, 32, 6, 28, nb)
        for i in range(2 * level, 12):
            if scaled[i]:
                sgd_scaled(params[i], grads[i], scales[i], bufs[i], lr, momentum)
            else:
                sgd(params[i], grads[i], bufs[i], lr, momentum)
        return loss


def _table(t: K.Table) -> tuple:
    return t.starts, t.kin, t.kid, t.back_starts, t.back_kin, t.back_kid


# Each layer's per-run parameters as the 2-D arrays step_kernel reads, for R runs.
SHAPES = {"c1.weight": lambda R: (R, 150), "c1.bias": lambda R: (R, 6), "s2.coef": lambda R: (R, 6),
          "s2.bias": lambda R: (R, 6), "c3.kernels": lambda R: (R, 1500), "c3.bias": lambda R: (R, 16),
          "s4.coef": lambda R: (R, 16), "s4.bias": lambda R: (R, 16), "c5.weight": lambda R: (R * 120, 400),
          "c5.bias": lambda R: (R, 120), "f6.weight": lambda R: (R * 20, 120), "f6.bias": lambda R: (R, 20)}
# Scratch floats per (run, sample): x0, y1, y2, y3, y4, dz1, dz3, dy1, dy2, dy3, dy4, h4, h5, h6, g6, d6, g5, d5, g4
SCRATCH = (1024, 6 * 784, 6 * 196, 1600, 400, 6 * 37 * 32, 16 * 19 * 14, 6 * 784, 6 * 196, 1600, 400,
           400, 120, 20, 20, 20, 120, 120, 400)


class Step:
    """`step(h, idx, targets, weight, lr, momentum) -> loss`: one SGD + momentum step of R nets above `level`,
    updating `params` and `momentum` (name -> tensor with the runs stacked first, as in
    StackedUpper, or one net's own parameters when runs=1) in place; see step_kernel. `scales` (name ->
    tensor shaped like the parameter) multiplies those gradients entry by entry (StackedUpper.scale)."""

    def __init__(self, params: dict[str, torch.Tensor], momentum_bufs: dict[str, torch.Tensor], level: int,
                 runs: int, batch: int, scales: dict[str, torch.Tensor] | None = None):
        self.level, self.batch = level, batch
        self.ws = tuple(np.zeros(s * runs * batch, np.float32) for s in SCRATCH)
        self.t1, self.t3 = _table(K.C1_TABLE), _table(K.C3_TABLE)
        self.bind(params, momentum_bufs, runs, scales)

    def bind(self, params: dict[str, torch.Tensor], momentum_bufs: dict[str, torch.Tensor], runs: int,
             scales: dict[str, torch.Tensor] | None = None) -> None:
        """Point at these tensors (after a regroup: fewer runs, new tensors)."""
        def view(t: torch.Tensor | None, name: str) -> np.ndarray:
            if t is None:
                return np.zeros((1, 1), np.float32)  # a frozen level's: never read
            if not t.is_contiguous() or t.dtype != torch.float32:
                raise ValueError(f"{name}: the fused step needs contiguous float32 parameters")
            return t.detach().numpy().reshape(SHAPES[name](runs))
        self.runs = runs
        self.params = tuple(view(params.get(k), k) for k in SHAPES)
        self.bufs = tuple(view(momentum_bufs.get(k), k) for k in SHAPES)
        self.grads = tuple(np.zeros_like(p) for p in self.params)
        scales = scales or {}
        self.scales = tuple(view(scales.get(k), k) for k in SHAPES)
        self.scaled = np.array([k in scales for k in SHAPES], np.bool_)

    def __call__(self, h: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                 lr: float, momentum: float) -> float:
        R, nb = idx.shape
        if R != self.runs or not 0 < nb <= self.batch:
            raise ValueError(f"a step of {self.runs} runs x 1..{self.batch} samples (got {R} x {nb})")
        return float(step_kernel(h.detach().reshape(len(h), -1).contiguous().numpy(), idx.contiguous().numpy(),
                           targets.detach().reshape(R * nb, -1).contiguous().numpy(),
                           weight.detach().reshape(-1).contiguous().numpy(), self.level, self.params, self.grads,
                           self.bufs, self.ws, self.t1, self.t3, np.float32(lr), np.float32(momentum),
                           self.scales, self.scaled))


class SourceStep:
    """`step(x, targets) -> loss`: one SGD + momentum step of a whole LeNet5 (every level trained,
    on the CPU) on a mini-batch x (b, 1, 32, 32), b <= batch, updating its parameters in place;
    the loss is the batch's MSE, as F.mse_loss."""

    def __init__(self, model: torch.nn.Module, lr: float, momentum: float, batch: int):
        params = {f"{layer}.{p}": t for layer in LAYERS for p, t in getattr(model, layer).named_parameters()}
        if list(params) != list(SHAPES) or params["f6.weight"].shape[0] != 20:
            raise ValueError("SourceStep trains the paper's LeNet5 with 20 outputs")
        self.step = Step(params, {k: torch.zeros_like(t) for k, t in params.items()}, 0, 1, batch)
        self.batch, self.lr, self.momentum = batch, lr, momentum

    def __call__(self, x: torch.Tensor, targets: torch.Tensor) -> float:
        nb = len(x)
        if not 0 < nb <= self.batch:
            raise ValueError(f"a mini-batch of 1..{self.batch} samples (got {nb})")
        return self.step(x, torch.arange(nb).view(1, nb), targets, torch.full((nb,), 1.0 / (nb * 20)), self.lr,
                         self.momentum)


def source_step(model: torch.nn.Module, level: int, lr: float, momentum: float, batch: int,
                device: torch.device) -> SourceStep | None:
    """The fused step where it applies (a `lanes` LeNet5 trained from level 0 on the CPU, the kernels on), else None."""
    if not getattr(model, "lanes", False) or level != 0 or device.type != "cpu" or not K.available():
        return None
    if any(not p.requires_grad for p in model.parameters()) or next(model.parameters()).dtype != torch.float32:
        return None
    return SourceStep(model, lr, momentum, batch)
