"""The convolution and sub-sampling levels (C1, S2, C3, S4) of one or many nets as numba CPU
kernels with the batch in the SIMD lanes, beside the plain PyTorch path they must equal.

Layout ("lanes"): an activation is a contiguous float32 tensor (R, maps, H, W, B): run r's
sample b is the innermost index, so one map row of a run is one contiguous stretch of W*B
floats and every weight is one number broadcast over it. A 5x5 correlation then runs along
whole rows, five taps per pass (one load and one store of the output per five multiply-adds),
whatever the number of runs or maps: the plain path's grouped convolutions run one run at a
time on 4-16 samples and 1-16 channels (issue #12: 5-15% of a core's peak). The backward
writes the output gradient once with a zero border (dz_rows); the weight gradient is then a
sum along whole maps (five taps per pass, no stores) and the input gradient the same
correlation as the forward on that bordered gradient, the kernels turned round, over the table
read backwards. Each level's scaled tanh is fused in (its output is kept for the
backward); tanh is Eigen's float rational approximation (vectorisable; within 2e-7 of torch.tanh).

The plain reference they must equal is the PyTorch path beside them: StackedUpper.forward's
grouped convolutions and model.LeNet5's layers (LENET_KERNELS=torch selects it);
tests/test_fast.py compares outputs and every gradient.

numba notes: hot loops take unsigned indexes (numba's negative-index checks otherwise keep LLVM
from vectorising: 30x slower) and slices of the arrays (LLVM then vectorises the five-tap sum;
with 2-D or offset indexing it did not).
"""
from __future__ import annotations


import numpy as np
import torch

from lenet import settings
from lenet import config
from lenet.config import TANH_A, TANH_S

try:
    import numba
except ImportError:  # the plain path stays the fallback
    numba = None


def available() -> bool:
    """The kernels run unless numba is missing or LENET_KERNELS=torch asks for the plain path."""
    return numba is not None and settings.kernels() != "torch"


if numba is not None:
    jit = numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
    U = np.uint64
    A, S = np.float32(TANH_A), np.float32(TANH_S)
    INV_A = np.float32(1.0 / TANH_A)

    @jit
    def tanh(x):
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

    @jit
    def taps(out, src, off, step, n, w0, w1, w2, w3, w4):
        """out[p] += w0 src[off + p] + w1 src[off + step + p] + ... + w4 src[off + 4 step + p], p < n:
        five taps of a kernel row along a stretch of lanes (one load and store of out per five)."""
        s0 = src[off:]
        s1 = src[off + step:]
        s2 = src[off + 2 * step:]
        s3 = src[off + 3 * step:]
        s4 = src[off + 4 * step:]
        for p in range(n):
            out[p] += w0 * s0[p] + w1 * s1[p] + w2 * s2[p] + w3 * s3[p] + w4 * s4[p]

    @jit
    def corr(x, w, starts, kin, kid, y, ci, hi, wi, co, ho, wo, lanes):
        """y[r, o, i, j, :] = sum over c in starts[o]..starts[o+1]-1, ki, kj of
        w[r, kid[c]*25 + ki*5 + kj] * x[r, kin[c], i+ki, j+kj, :]; x (R*ci*hi*wi*B), y (R*co*ho*wo*B) flat."""
        B = U(lanes)
        n = U(wo) * B
        for r in range(w.shape[0]):
            rr = U(r)
            for o in range(co):
                for i in range(ho):
                    yo = y[U(((r * co + o) * ho + i) * wo) * B:]
                    for p in range(n):
                        yo[p] = 0.0
                    for c in range(starts[o], starts[o + 1]):
                        base = U(((r * ci + kin[c]) * hi + i) * wi) * B
                        for ki in range(5):
                            t = U(kid[c] * 25 + ki * 5)
                            taps(yo, x, base + U(ki * wi) * B, B, n,
                                  w[rr, t], w[rr, t + 1], w[rr, t + 2], w[rr, t + 3], w[rr, t + 4])

    @jit
    def bias_tanh(y, b, size):
        """y[r, o, ...] = A tanh(S (y + b[r, o])) in place; `size` elements per map."""
        m = U(size)
        for r in range(b.shape[0]):
            for o in range(b.shape[1]):
                bo = b[U(r), U(o)]
                yo = y[U(r * b.shape[1] + o) * m:]
                for p in range(m):
                    yo[p] = A * tanh(S * (yo[p] + bo))

    @jit
    def dz_rows(y, gy, dz, db, co, ho, wo, lanes):
        """dz = gy * d(A tanh(S z))/dz from the output y = A tanh(S z) (R, co, ho, wo, B), written with
        a zero border into rows of wo + 4 columns: (R, co, ho + 9, wo + 4, B), map row d + 4 holding
        [4 zero columns, dz row d]; rows 0-3 and the last 5 are zero. In this layout the weight gradient
        and the input gradient below run along whole maps. db[r, o] = sum of dz."""
        B = U(lanes)
        wi = U(wo + 4)
        n = U(wo) * B
        size = U(ho + 9) * wi * B
        for r in range(db.shape[0]):
            for o in range(co):
                m = U(r * co + o)
                out = dz[m * size:]
                for p in range(U(4) * wi * B):
                    out[p] = 0.0
                acc = np.float32(0.0)
                for d in range(ho):
                    row = out[(U(d + 4) * wi) * B:]
                    for p in range(U(4) * B):
                        row[p] = 0.0
                    src = U((m * U(ho) + U(d)) * U(wo)) * B
                    g = gy[src:]
                    v = y[src:]
                    dst = row[U(4) * B:]
                    for p in range(n):
                        t = g[p] * S * (A - v[p] * v[p] * INV_A)
                        dst[p] = t
                        acc += t
                for p in range(U(ho + 4) * wi * B, size):
                    out[p] = 0.0
                db[U(r), U(o)] = acc

    @jit
    def corr_dw(x, dz, starts, kin, dw, ci, hi, wi, co, ho, lanes):
        """dw[r, c*25 + ki*5 + kj] = sum over map positions and lanes of dz[r, o, i, j, :] * x[r, kin[c], i+ki, j+kj, :],
        dz in dz_rows's layout: one pass along the whole map per (c, ki), five taps at once."""
        B = U(lanes)
        W = U(wi)
        n = U(ho) * W * B - U(4) * B
        size = U(ho + 9) * W * B
        for r in range(dw.shape[0]):
            rr = U(r)
            for o in range(co):
                d = dz[U(r * co + o) * size + (U(4) * W + U(4)) * B:]
                for c in range(starts[o], starts[o + 1]):
                    xm = U((r * ci + kin[c]) * hi) * W * B
                    for ki in range(5):
                        xr = xm + U(ki) * W * B
                        x0 = x[xr:]
                        x1 = x[xr + B:]
                        x2 = x[xr + 2 * B:]
                        x3 = x[xr + 3 * B:]
                        x4 = x[xr + 4 * B:]
                        a0 = a1 = a2 = a3 = a4 = np.float32(0.0)
                        for p in range(n):
                            v = d[p]
                            a0 += v * x0[p]
                            a1 += v * x1[p]
                            a2 += v * x2[p]
                            a3 += v * x3[p]
                            a4 += v * x4[p]
                        t = U(c * 25 + ki * 5)
                        dw[rr, t], dw[rr, t + 1], dw[rr, t + 2], dw[rr, t + 3], dw[rr, t + 4] = a0, a1, a2, a3, a4

    @jit
    def corr_dx(dz, w, starts, kin, kid, dx, ci, hi, wi, co, ho, lanes):
        """dx[r, i] = sum over the connections c from input map i (the table read backwards: out map
        kin[c], kernel kid[c]) of the full correlation of dz's map with kernel c turned round; dz in
        dz_rows's layout (its zero border and row wraparound are the correlation's padding), so
        each (c, ki) is one pass along the whole map, five taps at once."""
        B = U(lanes)
        W = U(wi)
        n = U(hi) * W * B
        size = U(ho + 9) * W * B
        for r in range(w.shape[0]):
            rr = U(r)
            for i in range(ci):
                out = dx[U(r * ci + i) * n:]
                for p in range(n):
                    out[p] = 0.0
                for c in range(starts[i], starts[i + 1]):
                    dm = U(r * co + kin[c]) * size
                    for ki in range(5):
                        t = U(kid[c] * 25 + 24 - ki * 5)  # kernel turned round: tap (4-ki, 4-kj)
                        taps(out, dz, dm + U(ki) * W * B, B, n,
                              w[rr, t], w[rr, t - 1], w[rr, t - 2], w[rr, t - 3], w[rr, t - 4])

    @jit
    def pool_fwd(x, coef, bias, y, maps, ho, wo, lanes):
        """y[r, m, i, j, :] = A tanh(S (coef[r, m] * (sum of the 2x2 tile of x) + bias[r, m]))."""
        B = U(lanes)
        wi = U(2 * wo)
        for r in range(coef.shape[0]):
            for m in range(maps):
                cf, bs = coef[U(r), U(m)], bias[U(r), U(m)]
                for i in range(ho):
                    u = U(((r * maps + m) * 2 * ho + 2 * i) * 2 * wo) * B
                    v = U(((r * maps + m) * ho + i) * wo) * B
                    for j in range(wo):
                        a = u + U(2 * j) * B
                        e = v + U(j) * B
                        for q in range(B):
                            s = x[a + q] + x[a + B + q] + x[a + wi * B + q] + x[a + wi * B + B + q]
                            y[e + q] = A * tanh(S * (cf * s + bs))

    @jit
    def pool_bwd(x, coef, y, gy, dx, dcoef, dbias, maps, ho, wo, lanes):
        """Backward of pool_fwd: dcoef, dbias (R, maps), and dx unless it is empty."""
        B = U(lanes)
        wi = U(2 * wo)
        for r in range(coef.shape[0]):
            for m in range(maps):
                cf = coef[U(r), U(m)]
                gc = gb = np.float32(0.0)
                for i in range(ho):
                    u = U(((r * maps + m) * 2 * ho + 2 * i) * 2 * wo) * B
                    v = U(((r * maps + m) * ho + i) * wo) * B
                    for j in range(wo):
                        a = u + U(2 * j) * B
                        e = v + U(j) * B
                        for q in range(B):
                            d = gy[e + q] * S * (A - y[e + q] * y[e + q] * INV_A)
                            gc += d * (x[a + q] + x[a + B + q] + x[a + wi * B + q] + x[a + wi * B + B + q])
                            gb += d
                        if dx.shape[0] > 0:
                            for q in range(B):
                                g = gy[e + q] * S * (A - y[e + q] * y[e + q] * INV_A) * cf
                                dx[a + q] = g
                                dx[a + B + q] = g
                                dx[a + wi * B + q] = g
                                dx[a + wi * B + B + q] = g
                dcoef[U(r), U(m)] = gc
                dbias[U(r), U(m)] = gb


class Table:
    """A convolution level's connections: out map o reads input maps kin[starts[o]:starts[o+1]]
    through kernels starts[o]..starts[o+1]-1 (C1: one each from the image; C3: LeCun's table),
    and the same table read backwards (for the input gradient)."""

    def __init__(self, table, in_maps: int):
        self.in_maps, self.out_maps = in_maps, len(table)
        pairs = [(o, i) for o, ins in enumerate(table) for i in ins]  # kernel c = pairs[c]
        self.kin = np.array([i for _, i in pairs], np.int64)
        self.kid = np.arange(len(pairs), dtype=np.int64)
        self.starts = np.cumsum([0] + [len(ins) for ins in table]).astype(np.int64)
        back = sorted(range(len(pairs)), key=lambda c: (pairs[c][1], c))
        self.back_kin = np.array([pairs[c][0] for c in back], np.int64)
        self.back_kid = np.array(back, np.int64)
        self.back_starts = np.cumsum([0] + [sum(i == m for _, i in pairs) for m in range(in_maps)]).astype(np.int64)


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().view(-1).numpy()


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, table):
        R, ci, hi, wi, B = x.shape
        ho, wo = hi - 4, wi - 4
        y = torch.empty(R, table.out_maps, ho, wo, B)
        yf = y.view(-1).numpy()
        corr(_flat(x), w.detach().contiguous().numpy(), table.starts, table.kin, table.kid, yf,
              ci, hi, wi, table.out_maps, ho, wo, B)
        bias_tanh(yf, b.detach().contiguous().numpy(), ho * wo * B)
        ctx.save_for_backward(x, w, y)
        ctx.table = table
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w, y = ctx.saved_tensors
        table = ctx.table
        R, ci, hi, wi, B = x.shape
        co, ho, wo = y.shape[1:4]
        dz = torch.empty(R * co * (ho + 9) * wi * B)  # dz_rows's layout, zero border included
        db = torch.empty(R, co)
        dz_rows(y.view(-1).numpy(), _flat(gy), dz.numpy(), db.numpy(), co, ho, wo, B)
        dw = torch.empty(w.shape)
        wf = w.detach().contiguous().numpy()
        corr_dw(_flat(x), dz.numpy(), table.starts, table.kin, dw.numpy(), ci, hi, wi, co, ho, B)
        dx = None
        if ctx.needs_input_grad[0]:
            dx = torch.empty(x.shape)
            corr_dx(dz.numpy(), wf, table.back_starts, table.back_kin, table.back_kid, dx.view(-1).numpy(),
                     ci, hi, wi, co, ho, B)
        return dx, dw, db, None


class _Pool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, bias):
        R, maps, h, w, B = x.shape
        y = torch.empty(R, maps, h // 2, w // 2, B)
        pool_fwd(_flat(x), coef.detach().contiguous().numpy(), bias.detach().contiguous().numpy(),
                  y.view(-1).numpy(), maps, h // 2, w // 2, B)
        ctx.save_for_backward(x, coef, y)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, coef, y = ctx.saved_tensors
        R, maps, h, w, B = x.shape
        dx = torch.empty(x.shape if ctx.needs_input_grad[0] else (0,))
        dcoef, dbias = torch.empty(R, maps), torch.empty(R, maps)
        pool_bwd(_flat(x), coef.detach().contiguous().numpy(), y.view(-1).numpy(), _flat(gy),
                  dx.view(-1).numpy(), dcoef.numpy(), dbias.numpy(), maps, h // 2, w // 2, B)
        return (dx if ctx.needs_input_grad[0] else None), dcoef, dbias


def to_lanes(x: torch.Tensor) -> torch.Tensor:
    """(B, R, C, H, W) batch-major inputs -> (R, C, H, W, B) lanes."""
    return x.permute(1, 2, 3, 4, 0).contiguous()


def conv(x: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor, table: Table) -> torch.Tensor:
    """A convolution level + scaled tanh on lanes x (R, Ci, H, W, B): kernels (R, K, [1,] 5, 5) and
    bias (R, Co) per run -> (R, Co, H-4, W-4, B)."""
    return _Conv.apply(x.contiguous(), kernels.reshape(kernels.shape[0], -1), bias, table)


def pool(x: torch.Tensor, coef: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A trainable 2x2 sub-sampling level + scaled tanh on lanes x (R, M, H, W, B): coef, bias (R, M)."""
    return _Pool.apply(x.contiguous(), coef, bias)


C1_TABLE = Table([(0,)] * 6, 1)  # C1: six maps, each from the image
C3_TABLE = Table(config.C3_TABLE, 6)  # C3: LeCun's sparse table


def levels(h: torch.Tensor, level: int, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The levels above `level` (< 4) up to S4 of R nets at once: h (B, R, *level's shape) batch-major
    (or (B, *shape) for one net, R = 1), p their stacked parameters named as in LeNet5 ("c1.weight": (R, 6, 1, 5, 5),
    ...) -> S4's maps, (R, B, 400) (or (B, 16, 5, 5) for one net)."""
    one = h.dim() == 4
    x = h.permute(1, 2, 3, 0).unsqueeze(0).contiguous() if one else to_lanes(h)  # (R, C, H, W, B)
    for layer in ("c1", "s2", "c3", "s4")[level:]:
        if layer in ("c1", "c3"):
            w, table = (p["c1.weight"], C1_TABLE) if layer == "c1" else (p["c3.kernels"], C3_TABLE)
            x = conv(x, w, p[f"{layer}.bias"], table)
        else:
            x = pool(x, p[f"{layer}.coef"], p[f"{layer}.bias"])
    R, B = x.shape[0], x.shape[-1]
    return x[0].permute(3, 0, 1, 2) if one else x.view(R, 400, B).transpose(1, 2)
