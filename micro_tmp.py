import numba, numpy as np, time
jit = numba.njit(fastmath=True, boundscheck=False, error_model="numpy")
@jit
def conv_signed(x, wt, t1, B, P):
    L = 28 * P
    for n in range(B):
        for m in range(6):
            for y in range(28):
                o = ((n * 6 + m) * 784 + y * 28) * P
                for ki in range(5):
                    for kj in range(5):
                        k = m * 25 + ki * 5 + kj
                        xo = (n * 1024 + (y + ki) * 32 + kj) * P
                        for q in range(L):
                            t1[o + q] += wt[k, q] * x[xo + q]
@jit
def conv_views(x, wt, t1, B, P):
    L = 28 * P
    for n in range(B):
        for m in range(6):
            for y in range(28):
                o = ((n * 6 + m) * 784 + y * 28) * P
                out = t1[o:o + L]
                for ki in range(5):
                    for kj in range(5):
                        k = m * 25 + ki * 5 + kj
                        xo = (n * 1024 + (y + ki) * 32 + kj) * P
                        xs = x[xo:xo + L]
                        ws = wt[k]
                        out += ws * xs
@jit
def conv_unsigned(x, wt, t1, B, P):
    L = np.uint64(28 * P)
    for n in range(B):
        for m in range(6):
            for y in range(28):
                o = np.uint64(((n * 6 + m) * 784 + y * 28) * P)
                for ki in range(5):
                    for kj in range(5):
                        k = np.uint64(m * 25 + ki * 5 + kj)
                        xo = np.uint64((n * 1024 + (y + ki) * 32 + kj) * P)
                        for q in range(L):
                            t1[o + q] += wt[k, q] * x[xo + q]
B, P = 4, 32
x = np.random.rand(B * 1024 * P).astype(np.float32); wt = np.random.rand(150, 28 * P).astype(np.float32)
for f in (conv_signed, conv_views, conv_unsigned):
    t1 = np.zeros(B * 6 * 784 * P, np.float32); f(x, wt, t1, B, P)
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter(); f(x, wt, t1, B, P); best = min(best, time.perf_counter() - t0)
    print(f.__name__, round(best * 1e3, 2), "ms")
