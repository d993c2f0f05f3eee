import os, time, torch
torch.set_num_threads(1)
from lenet.fast import kernels as K
from lenet.model import LeNet5
from lenet.fast.stacked import StackedUpper
os.environ["LENET_KERNELS"] = "numba"
for R in (5, 12, 25):
    x = torch.randn(4, R, 1, 32, 32)
    ps = [(torch.randn(R, 6, 1, 5, 5) * 0.2).requires_grad_(True)] + [(torch.randn(R, 6) * 0.2).requires_grad_(True) for _ in range(3)]
    g = StackedUpper([LeNet5(seed=i) for i in range(R)], 0)
    gx, gt = torch.randn(4, R, 1, 32, 32), torch.randn(R, 4, 20)
    def step():
        g.sgd_step(((g.forward(gx) - gt) ** 2).sum(), 0.001, 0.9)
    cases = {"ref fwd": lambda: K.reference(x, *ps), "fast fwd": lambda: K.c1_s2(x, *ps),
             "ref f+b": lambda: torch.autograd.grad(K.reference(x, *ps).sum(), ps),
             "fast f+b": lambda: torch.autograd.grad(K.c1_s2(x, *ps).sum(), ps)}
    res = {k: [] for k in list(cases) + ["step torch", "step numba"]}
    for rep in range(6):
        for k, f in cases.items():
            f(); t0 = time.perf_counter()
            for _ in range(20): f()
            res[k].append((time.perf_counter() - t0) / 20 * 1e3)
        for k in ("torch", "numba"):
            os.environ["LENET_KERNELS"] = k; step()
            t0 = time.perf_counter()
            for _ in range(20): step()
            res["step " + k].append((time.perf_counter() - t0) / 20 * 1e3)
    b = {k: round(min(v), 2) for k, v in res.items()}
    print(R, b, "f+b x%.2f" % (b["ref f+b"] / b["fast f+b"]), "step x%.2f" % (b["step torch"] / b["step numba"]))
