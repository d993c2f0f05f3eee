"""C1 -> scaled tanh -> S2 -> scaled tanh of R stacked runs as one fused CPU kernel (numba),
beside the plain PyTorch reference it must equal.

Why: in a group of n=0 runs, oneDNN runs C1's grouped convolution one run at a time and the
tanh, pooling and S2 scaling then take four more passes over C1's maps (issue #12: 2.1 ms +
3.3 ms forward, 7.4 ms with backward, 24 runs at batch 4). Here the runs sit in the SIMD
lanes (run index innermost, so every weight and pixel load serves all runs at once), the
element-wise work happens while the tile is in registers, and the backward is written by
hand: the weight gradient accumulates in registers per (map, tap) over the whole batch.
tanh is Eigen's float rational approximation (vectorisable; within 2e-7 of torch.tanh).

Measured (issue #12's case, 12-25 stacked runs at batch 4, one thread, on a 2-core machine
loaded by other jobs (load ~11), interleaved A/B, best of 6): C1..S2 forward + backward 2.2x
faster than the reference, a whole n=0 group training step 1.5x. What made it: hot loops
that run along whole map rows (28 x lanes long) with unsigned indexes; numba's checks for
negative indexes otherwise keep LLVM from vectorising (30x slower on the same loop).
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..model import TANH_A, TANH_S

try:
    import numba
except ImportError:  # the plain path stays the fallback
    numba = None


def reference(x, w1, b1, coef, bias):
    """The plain path: x (B, R, 1, 32, 32), w1 (R, 6, 1, 5, 5), b1/coef/bias (R, 6) -> (B, R*6, 14, 14)."""
    B, R = x.shape[:2]
    h = F.conv2d(x.reshape(B, R, 32, 32), w1.flatten(0, 1), b1.flatten(), groups=R)  # (B, R*6, 28, 28)
    h = TANH_A * torch.tanh(h * TANH_S)
    h = F.avg_pool2d(h, 2) * 4.0 * coef.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1)
    return TANH_A * torch.tanh(h * TANH_S)


def available() -> bool:
    return numba is not None and os.environ.get("LENET_KERNELS", "torch") == "numba"


if numba is not None:
    _jit = numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")

    @_jit
    def _tanh(x):
        # Eigen's generic_fast_tanh_float: odd rational 13/6 on [-7.9, 7.9]; plain arithmetic, so it vectorises
        c = np.float32(7.90531110763549805)
        x = x if x < c else c
        x = x if x > -c else -c
        x2 = x * x
        p = np.float32(-2.76076847742355e-16)
        p = p * x2 + np.float32(2.00018790482477e-13)
        p = p * x2 + np.float32(-8.60467152213735e-11)
        p = p * x2 + np.float32(5.12229709037114e-08)
        p = p * x2 + np.float32(1.48572235717979e-05)
        p = p * x2 + np.float32(6.37261928875436e-04)
        p = p * x2 + np.float32(4.89352455891786e-03)
        q = np.float32(1.19825839466702e-06)
        q = q * x2 + np.float32(1.18534705686654e-04)
        q = q * x2 + np.float32(2.26843463243900e-03)
        q = q * x2 + np.float32(4.89352518554385e-03)
        return x * p / q

    U = np.uint64  # unsigned indexes: numba then drops its negative-index wraparound, and the loops vectorise (30x)

    @_jit
    def _forward(x, wt, bt, coef, bias, t1, t2):
        """Flat arrays, P lanes innermost. x (B*32*32*P) pixels; wt (150, 28*P) and bt (6, 28*P): C1's
        taps and biases repeated along a map row, so the hot loops run along whole rows (28*P long),
        not over the P lanes alone (too short: loop overhead dominates); coef, bias (6, P).
        Writes t1 (B*6*28*28*P) = tanh(S*C1) and t2 (B*6*14*14*P) = tanh(S*S2); the output is A*t2."""
        P = U(coef.shape[1])
        L = U(28) * P
        B = x.shape[0] // (1024 * coef.shape[1])
        A, S = np.float32(TANH_A), np.float32(TANH_S)
        for n in range(B):
            for m in range(6):
                for y in range(28):
                    o = U(((n * 6 + m) * 784 + y * 28)) * P
                    mm = U(m)
                    for q in range(L):
                        t1[o + q] = bt[mm, q]
                    for ki in range(5):
                        for kj in range(5):
                            k = U(m * 25 + ki * 5 + kj)
                            xo = U(n * 1024 + (y + ki) * 32 + kj) * P
                            for q in range(L):
                                t1[o + q] += wt[k, q] * x[xo + q]
        for q in range(U(t1.shape[0])):
            t1[q] = _tanh(S * t1[q])
        for n in range(B):
            for m in range(6):
                mm = U(m)
                for i in range(14):
                    o = U((n * 6 + m) * 784 + 2 * i * 28) * P
                    for j in range(14):
                        u = o + U(2 * j) * P
                        v = U(((n * 6 + m) * 14 + i) * 14 + j) * P
                        for r in range(P):
                            tile = t1[u + r] + t1[u + P + r] + t1[u + L + r] + t1[u + L + P + r]
                            t2[v + r] = _tanh(S * (A * tile * coef[mm, r] + bias[mm, r]))

    @_jit
    def _backward(x, coef, t1, t2, g, dw, db, dcoef, dbias):
        """g (B*6*14*14*P): gradient of the output A*t2. Writes dw (150, P), db, dcoef, dbias (6, P)."""
        P = U(coef.shape[1])
        L = U(28) * P
        B = x.shape[0] // (1024 * coef.shape[1])
        AS = np.float32(TANH_A * TANH_S)
        A = np.float32(TANH_A)
        dc = np.empty(B * 784 * coef.shape[1], np.float32)  # gradient of C1's pre-activation, one map at a time
        acc = np.empty(28 * coef.shape[1], np.float32)
        for m in range(6):
            mm = U(m)
            for r in range(P):
                db[mm, r] = 0.0
                dcoef[mm, r] = 0.0
                dbias[mm, r] = 0.0
            for n in range(B):
                for i in range(14):
                    o = U((n * 6 + m) * 784 + 2 * i * 28) * P
                    c = U(n * 784 + 2 * i * 28) * P
                    for j in range(14):
                        u = o + U(2 * j) * P
                        e = c + U(2 * j) * P
                        v = U(((n * 6 + m) * 14 + i) * 14 + j) * P
                        for r in range(P):
                            t = t2[v + r]
                            d = g[v + r] * AS * (1 - t * t)                   # through S2's tanh
                            u0, u1, u2, u3 = t1[u + r], t1[u + P + r], t1[u + L + r], t1[u + L + P + r]
                            dcoef[mm, r] += d * A * (u0 + u1 + u2 + u3)
                            dbias[mm, r] += d
                            du = d * coef[mm, r] * AS
                            v0 = du * (1 - u0 * u0)                           # through C1's tanh
                            v1 = du * (1 - u1 * u1)
                            v2 = du * (1 - u2 * u2)
                            v3 = du * (1 - u3 * u3)
                            dc[e + r] = v0
                            dc[e + P + r] = v1
                            dc[e + L + r] = v2
                            dc[e + L + P + r] = v3
                            db[mm, r] += v0 + v1 + v2 + v3
            for ki in range(5):
                for kj in range(5):
                    for q in range(L):
                        acc[q] = 0.0
                    for n in range(B):
                        for y in range(28):
                            c = U(n * 784 + y * 28) * P
                            xo = U(n * 1024 + (y + ki) * 32 + kj) * P
                            for q in range(L):
                                acc[q] += dc[c + q] * x[xo + q]
                    k = U(m * 25 + ki * 5 + kj)
                    for r in range(P):
                        dw[k, r] = 0.0
                    for z in range(28):
                        zz = U(z) * P
                        for r in range(P):
                            dw[k, r] += acc[zz + r]


LANES = 16  # runs are padded to a multiple of this (AVX-512 holds 16 floats): no scalar remainder loops


class _C1S2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, coef, bias):
        B, R = x.shape[:2]
        P = -(-R // LANES) * LANES
        pad = (0, P - R)
        xl = F.pad(x.reshape(B, R, 1024).permute(0, 2, 1), pad).reshape(-1)            # (B*32*32*P,): runs innermost
        wt = F.pad(w1.detach().reshape(R, 150).t(), pad).repeat(1, 28).contiguous()     # (150, 28*P)
        bt = F.pad(b1.detach().t(), pad).repeat(1, 28).contiguous()                     # (6, 28*P)
        cf, bs = (F.pad(t.detach().t(), pad).contiguous() for t in (coef, bias))        # (6, P)
        t1 = torch.empty(B * 6 * 784 * P)
        t2 = torch.empty(B * 6 * 196 * P)
        _forward(xl.numpy(), wt.numpy(), bt.numpy(), cf.numpy(), bs.numpy(), t1.numpy(), t2.numpy())
        ctx.save_for_backward(xl, cf, t1, t2)
        ctx.R = R
        out = (TANH_A * t2.view(B, 6 * 196, P)[:, :, :R]).transpose(1, 2)
        return out.reshape(B, R * 6, 14, 14)  # (B, R*6, 14, 14)

    @staticmethod
    def backward(ctx, grad):
        xl, cf, t1, t2 = ctx.saved_tensors
        R, P = ctx.R, cf.shape[1]
        B = xl.shape[0] // (1024 * P)
        g = F.pad(grad.reshape(B, R, 6 * 196).transpose(1, 2), (0, P - R)).reshape(-1)
        dw, db, dcoef, dbias = torch.empty(150, P), torch.empty(6, P), torch.empty(6, P), torch.empty(6, P)
        _backward(xl.numpy(), cf.numpy(), t1.numpy(), t2.numpy(), g.contiguous().numpy(), dw.numpy(), db.numpy(),
                  dcoef.numpy(), dbias.numpy())
        return (None, dw[:, :R].t().reshape(R, 6, 1, 5, 5), db[:, :R].t(), dcoef[:, :R].t(), dbias[:, :R].t())


def c1_s2(x, w1, b1, coef, bias):
    """Same as `reference` (x needs no gradient); the fused kernel where numba is available."""
    if available() and not x.requires_grad and x.device.type == "cpu" and x.dtype == torch.float32:
        return _C1S2.apply(x, w1, b1, coef, bias)
    return reference(x, w1, b1, coef, bias)
