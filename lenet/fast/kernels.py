"""C1 -> scaled tanh -> S2 -> scaled tanh of R stacked runs as one fused CPU kernel (numba),
beside the plain PyTorch reference it must equal.

Why: in a group of n=0 runs, oneDNN runs C1's grouped convolution one run at a time and the
tanh, pooling and S2 scaling then take four more passes over C1's maps (issue #12: 2.1 ms +
3.3 ms forward, 7.4 ms with backward, 24 runs at batch 4). Here the runs sit in the SIMD
lanes (run index innermost, so every weight and pixel load serves all runs at once), the
element-wise work happens while the tile is in registers, and the backward is written by
hand: the weight gradient accumulates in registers per (map, tap) over the whole batch.
tanh is Eigen's float rational approximation (vectorisable; within 2e-7 of torch.tanh).

Measured (issue #12's case, 24-25 stacked runs at batch 4, one thread, a loaded 2-core machine,
interleaved A/B, best of 8): forward 2.0x faster than the reference, forward + backward 1.47x;
a whole n=0 group step 1.19x faster at 25 runs but 0.92x (slower) at 12. The inner loop over
16-32 lanes is too short: per-tap loop overhead, not arithmetic, dominates, and numba cannot
keep the lane accumulators in registers. Not clearly faster, so it is opt-in: LENET_KERNELS=numba
(numba is optional, in requirements-dev.txt); otherwise the plain reference runs.
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

    @_jit
    def _forward(x, w, b, coef, bias, t1, t2):
        """Rows of R lanes (no slices in the loops: numba would count references). x (B*32*32, R)
        pixels; w (6*25, R) taps; b, coef, bias (6, R). Writes t1 (B*6*28*28, R) = tanh(S*C1) and
        t2 (B*6*14*14, R) = tanh(S*S2); the layer's output is A*t2."""
        R = x.shape[1]
        B = x.shape[0] // 1024
        A, S = np.float32(TANH_A), np.float32(TANH_S)
        acc = np.empty(R, np.float32)
        tile = np.empty(R, np.float32)
        for n in range(B):
            for m in range(6):
                for i in range(14):
                    for j in range(14):
                        for r in range(R):
                            tile[r] = 0.0
                        for di in range(2):
                            for dj in range(2):
                                y, z = 2 * i + di, 2 * j + dj
                                for r in range(R):
                                    acc[r] = b[m, r]
                                for ki in range(5):
                                    for kj in range(5):
                                        k = m * 25 + ki * 5 + kj
                                        p = n * 1024 + (y + ki) * 32 + z + kj
                                        for r in range(R):
                                            acc[r] += w[k, r] * x[p, r]
                                o = ((n * 6 + m) * 28 + y) * 28 + z
                                for r in range(R):
                                    t = _tanh(S * acc[r])
                                    t1[o, r] = t
                                    tile[r] += t
                        o = ((n * 6 + m) * 14 + i) * 14 + j
                        for r in range(R):
                            t2[o, r] = _tanh(S * (A * tile[r] * coef[m, r] + bias[m, r]))

    @_jit
    def _backward(x, coef, t1, t2, g, dw, db, dcoef, dbias):
        """g (B*6*14*14, R): gradient of the output A*t2. Writes dw (6*25, R), db, dcoef, dbias (6, R)."""
        R = x.shape[1]
        B = x.shape[0] // 1024
        AS = np.float32(TANH_A * TANH_S)
        A = np.float32(TANH_A)
        dc = np.empty((B * 784, R), np.float32)  # gradient of C1's pre-activation, one map at a time
        acc = np.empty(R, np.float32)
        for m in range(6):
            for r in range(R):
                db[m, r] = 0.0
                dcoef[m, r] = 0.0
                dbias[m, r] = 0.0
            for n in range(B):
                for i in range(14):
                    for j in range(14):
                        q = ((n * 6 + m) * 14 + i) * 14 + j
                        p = ((n * 6 + m) * 28 + 2 * i) * 28 + 2 * j
                        c = n * 784 + 2 * i * 28 + 2 * j
                        for r in range(R):
                            t = t2[q, r]
                            d = g[q, r] * AS * (1 - t * t)                    # through S2's tanh
                            u0, u1, u2, u3 = t1[p, r], t1[p + 1, r], t1[p + 28, r], t1[p + 29, r]
                            dcoef[m, r] += d * A * (u0 + u1 + u2 + u3)
                            dbias[m, r] += d
                            du = d * coef[m, r] * AS
                            v0 = du * (1 - u0 * u0)                           # through C1's tanh
                            v1 = du * (1 - u1 * u1)
                            v2 = du * (1 - u2 * u2)
                            v3 = du * (1 - u3 * u3)
                            dc[c, r] = v0
                            dc[c + 1, r] = v1
                            dc[c + 28, r] = v2
                            dc[c + 29, r] = v3
                            db[m, r] += v0 + v1 + v2 + v3
            for ki in range(5):
                for kj in range(5):
                    for r in range(R):
                        acc[r] = 0.0
                    for n in range(B):
                        for y in range(28):
                            for z in range(28):
                                c = n * 784 + y * 28 + z
                                p = n * 1024 + (y + ki) * 32 + z + kj
                                for r in range(R):
                                    acc[r] += dc[c, r] * x[p, r]
                    k = m * 25 + ki * 5 + kj
                    for r in range(R):
                        dw[k, r] = acc[r]


LANES = 16  # runs are padded to a multiple of this (AVX-512 holds 16 floats): no scalar remainder loops


class _C1S2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w1, b1, coef, bias):
        B, R = x.shape[:2]
        P = -(-R // LANES) * LANES
        pad = (0, P - R)
        xl = F.pad(x.reshape(B, R, 1024).permute(0, 2, 1), pad).reshape(B * 1024, P)  # (B*32*32, P): runs innermost
        w = F.pad(w1.detach().reshape(R, 150).t(), pad).contiguous()                  # (6*25, P)
        b, cf, bs = (F.pad(t.detach().t(), pad).contiguous() for t in (b1, coef, bias))  # (6, P)
        t1 = torch.empty(B * 6 * 784, P)
        t2 = torch.empty(B * 6 * 196, P)
        _forward(xl.numpy(), w.numpy(), b.numpy(), cf.numpy(), bs.numpy(), t1.numpy(), t2.numpy())
        ctx.save_for_backward(xl, cf, t1, t2)
        ctx.R = R
        out = (TANH_A * t2[:, :R]).view(B, 6 * 196, R).transpose(1, 2)
        return out.reshape(B, R * 6, 14, 14)  # (B, R*6, 14, 14)

    @staticmethod
    def backward(ctx, grad):
        xl, cf, t1, t2 = ctx.saved_tensors
        R, P = ctx.R, xl.shape[1]
        B = xl.shape[0] // 1024
        g = F.pad(grad.reshape(B, R, 6 * 196).transpose(1, 2), (0, P - R)).reshape(B * 6 * 196, P)
        dw, db, dcoef, dbias = torch.empty(150, P), torch.empty(6, P), torch.empty(6, P), torch.empty(6, P)
        _backward(xl.numpy(), cf.numpy(), t1.numpy(), t2.numpy(), g.contiguous().numpy(), dw.numpy(), db.numpy(),
                  dcoef.numpy(), dbias.numpy())
        return (None, dw[:, :R].t().reshape(R, 6, 1, 5, 5), db[:, :R].t(), dcoef[:, :R].t(), dbias[:, :R].t())


def c1_s2(x, w1, b1, coef, bias):
    """Same as `reference` (x needs no gradient); the fused kernel where numba is available."""
    if available() and not x.requires_grad and x.device.type == "cpu" and x.dtype == torch.float32:
        return _C1S2.apply(x, w1, b1, coef, bias)
    return reference(x, w1, b1, coef, bias)
