"""One SGD step of a whole LeNet5 (the source net's training) as one numba call.

At the source recipe's mini-batch of 16 the lane kernels (kernels.py) take about half of a
step through PyTorch; the rest is dispatch: some forty small tensor operations, autograd's
bookkeeping and the optimiser, each costing microseconds on 16 samples. Here the whole step,
forward, MSE loss, backward and SGD with momentum, is one compiled function over the same
kernels, C5 and F6 written as dot products along their 400 and 120 inputs, every buffer
allocated once. It computes what `train.fit`'s PyTorch step computes (torch.optim.SGD: buf =
momentum * buf + grad, p -= lr * buf), up to float rounding: tests/test_engine.py compares them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import LAYERS
from . import kernels as K

if K.numba is not None:
    from .kernels import A, INV_A, S, U, _bias_tanh, _corr, _corr_dw, _corr_dx, _dz_rows, _jit, _pool_bwd, \
        _pool_fwd, _tanh

    @_jit
    def _dense_fwd(x, w, b, y, nb):
        """y[i] = A tanh(S (w @ x[i] + b)) for the first nb rows; x (B, K), w (O, K)."""
        for i in range(nb):
            xi = x[U(i)]
            for o in range(w.shape[0]):
                wo = w[U(o)]
                acc = np.float32(0.0)
                for k in range(U(w.shape[1])):
                    acc += xi[k] * wo[k]
                y[U(i), U(o)] = A * _tanh(S * (acc + b[U(o)]))

    @_jit
    def _dense_bwd(x, w, y, gy, dz, dw, db, dx, nb):
        """Backward of _dense_fwd from gy: dw, db, and dx unless it is empty; dz is scratch like y."""
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

    @_jit
    def _sgd(p, g, buf, lr, momentum):
        pf, gf, bf = p.reshape(-1), g.reshape(-1), buf.reshape(-1)
        for i in range(U(pf.shape[0])):
            bf[i] = momentum * bf[i] + gf[i]
            pf[i] -= lr * bf[i]

    @_jit
    def _step(xb, tb, nb, params, grads, bufs, ws, t1, t3, lr, momentum):
        """One step on the first nb rows of xb (B, 1024) and targets tb (B, 20); returns the MSE.
        params/grads/bufs: (c1 w (1, 150), c1 b (1, 6), s2 coef, s2 bias (1, 6), c3 w (1, 1500),
        c3 b (1, 16), s4 coef, s4 bias (1, 16), c5 w (120, 400), c5 b (1, 120), f6 w (20, 120), f6 b (1, 20));
        ws: flat scratch buffers; t1, t3: C1's and C3's connection tables (starts, kin, kid, back_starts,
        back_kin, back_kid)."""
        w1, b1, c2, s2, w3, b3, c4, s4, w5, b5, w6, b6 = params
        x0, y1, y2, y3, y4, dz1, dz3, dy1, dy2, dy3, dy4 = ws[:11]
        B = U(nb)
        for b in range(nb):  # the batch into the lanes: (1024, B)
            for p in range(1024):
                x0[U(p) * B + U(b)] = xb[U(b), U(p)]
        _corr(x0, w1, t1[0], t1[1], t1[2], y1, 1, 32, 32, 6, 28, 28, nb)
        _bias_tanh(y1, b1, 784 * nb)
        _pool_fwd(y1, c2, s2, y2, 6, 14, 14, nb)
        _corr(y2, w3, t3[0], t3[1], t3[2], y3, 6, 14, 14, 16, 10, 10, nb)
        _bias_tanh(y3, b3, 100 * nb)
        _pool_fwd(y3, c4, s4, y4, 16, 5, 5, nb)
        n = ws[11].shape[0] // 400  # rows of the (batch, features) buffers
        h4, g4 = ws[11].reshape(n, 400), ws[18].reshape(n, 400)
        h5, g5, d5 = ws[12].reshape(n, 120), ws[16].reshape(n, 120), ws[17].reshape(n, 120)
        h6, g6, d6 = ws[13].reshape(n, 20), ws[14].reshape(n, 20), ws[15].reshape(n, 20)
        for k in range(400):  # S4's maps out of the lanes: (B, 400)
            for b in range(nb):
                h4[U(b), U(k)] = y4[U(k) * B + U(b)]
        _dense_fwd(h4, w5, b5[0], h5, nb)
        _dense_fwd(h5, w6, b6[0], h6, nb)
        loss = 0.0
        scale = np.float32(2.0 / (nb * 20))
        for b in range(nb):
            for o in range(20):
                e = h6[U(b), U(o)] - tb[U(b), U(o)]
                loss += e * e
                g6[U(b), U(o)] = scale * e
        _dense_bwd(h5, w6, h6, g6, d6, grads[10], grads[11][0], g5, nb)
        _dense_bwd(h4, w5, h5, g5, d5, grads[8], grads[9][0], g4, nb)
        for k in range(400):  # the gradient back into the lanes
            for b in range(nb):
                dy4[U(k) * B + U(b)] = g4[U(b), U(k)]
        _pool_bwd(y3, c4, y4, dy4, dy3, grads[6], grads[7], 16, 5, 5, nb)
        _dz_rows(y3, dy3, dz3, grads[5], 16, 10, 10, nb)
        _corr_dw(y2, dz3, t3[0], t3[1], grads[4], 6, 14, 14, 16, 10, nb)
        _corr_dx(dz3, w3, t3[3], t3[4], t3[5], dy2, 6, 14, 14, 16, 10, nb)
        _pool_bwd(y1, c2, y2, dy2, dy1, grads[2], grads[3], 6, 14, 14, nb)
        _dz_rows(y1, dy1, dz1, grads[1], 6, 28, 28, nb)
        _corr_dw(x0, dz1, t1[0], t1[1], grads[0], 1, 32, 32, 6, 28, nb)
        for i in range(12):
            _sgd(params[i], grads[i], bufs[i], lr, momentum)
        return loss / (nb * 20)


def _table(t: K.Table) -> tuple:
    return t.starts, t.kin, t.kid, t.back_starts, t.back_kin, t.back_kid


class SourceStep:
    """`step(x, targets) -> loss`: one SGD + momentum step of `model` (every level trained, on the CPU)
    on a mini-batch x (b, 1, 32, 32), b <= batch, updating its parameters in place."""

    def __init__(self, model: torch.nn.Module, lr: float, momentum: float, batch: int):
        names = [f"{layer}.{p}" for layer in LAYERS for p, _ in getattr(model, layer).named_parameters()]
        tensors = dict(model.named_parameters())
        shapes = {"c1.weight": (1, 150), "c1.bias": (1, 6), "s2.coef": (1, 6), "s2.bias": (1, 6),
                  "c3.kernels": (1, 1500), "c3.bias": (1, 16), "s4.coef": (1, 16), "s4.bias": (1, 16),
                  "c5.weight": (120, 400), "c5.bias": (1, 120), "f6.weight": (tensors["f6.weight"].shape[0], 120),
                  "f6.bias": (1, tensors["f6.bias"].shape[0])}
        if list(shapes) != names or tensors["f6.weight"].shape[0] != 20:
            raise ValueError("SourceStep trains the paper's LeNet5 with 20 outputs")
        self.params = tuple(tensors[k].detach().numpy().reshape(shapes[k]) for k in names)  # views: updated in place
        self.grads = tuple(np.zeros_like(p) for p in self.params)
        self.bufs = tuple(np.zeros_like(p) for p in self.params)
        B = batch
        sizes = (1024, 6 * 784, 6 * 196, 1600, 400, 6 * 37 * 32, 16 * 19 * 14, 6 * 784, 6 * 196, 1600, 400,
                 400, 120, 20, 20, 20, 120, 120, 400)
        self.ws = tuple(np.zeros(s * B, np.float32) for s in sizes)
        self.t1, self.t3 = _table(K.C1_TABLE), _table(K.C3_TABLE)
        self.lr, self.momentum, self.batch = np.float32(lr), np.float32(momentum), batch

    def __call__(self, x: torch.Tensor, targets: torch.Tensor) -> float:
        nb = len(x)
        if not 0 < nb <= self.batch:
            raise ValueError(f"a mini-batch of 1..{self.batch} samples (got {nb})")
        xb = x.detach().reshape(nb, 1024).contiguous().numpy()
        tb = targets.detach().contiguous().numpy()
        return float(_step(xb, tb, nb, self.params, self.grads, self.bufs, self.ws, self.t1, self.t3,
                           self.lr, self.momentum))


def source_step(model: torch.nn.Module, level: int, lr: float, momentum: float, batch: int,
                device: torch.device) -> SourceStep | None:
    """The fused step where it applies (a `lanes` LeNet5 trained from level 0 on the CPU, the kernels on), else None."""
    if not getattr(model, "lanes", False) or level != 0 or device.type != "cpu" or not K.available():
        return None
    if any(not p.requires_grad for p in model.parameters()) or next(model.parameters()).dtype != torch.float32:
        return None
    return SourceStep(model, lr, momentum, batch)
