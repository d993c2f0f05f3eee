"""R independent LeNet-5s above level n, as one model with stacked per-run parameters.

Run r's parameters are slice r of every tensor, so one grouped convolution (groups=R)
or one batched matmul (bmm) computes every run's layer at once, and the sum of the
per-run losses gives each run exactly its own gradient (runs share no parameter).
Activations of the conv levels travel as (B, R*C, H, W): run r owns channels r*C..r*C+C-1, so
inputs come batch-major, (B, R, *shape), and reach that layout without a copy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lenet.config import LAYERS
from lenet.core.model import LeNet5, scaled_tanh
from lenet.core.train import sgd_momentum
from lenet.kernels import lanes as kernels

# Per-run parameter tensors of each layer, named as in LeNet5.
PARAMS = {"c1": ("weight", "bias"), "s2": ("coef", "bias"), "c3": ("kernels", "bias"),
          "s4": ("coef", "bias"), "c5": ("weight", "bias"), "f6": ("weight", "bias")}


class StackedUpper:
    """The trainable layers above `level` of R runs; `forward(h)` maps (B, R, *level shape) -> (R, B, 20)."""

    def __init__(self, nets: list[LeNet5], level: int, scales: list[dict[str, torch.Tensor] | None] | None = None):
        """scales: per run, None or {"c3.kernels": tensor shaped like the parameter, ...}: each gradient entry
        times its scale (a per-level learning rate, or 0 for a frozen map), as a gradient hook does in fit."""
        self.level = level
        self.layers = LAYERS[level:]
        self.c3_index = nets[0].c3.index  # C3's connection table, shared by every run
        self.params = {f"{layer}.{p}": torch.stack([getattr(getattr(net, layer), p).detach() for net in nets])
                       .clone().requires_grad_(True)
                       for layer in self.layers for p in PARAMS[layer]}
        self.momentum = {name: torch.zeros_like(t) for name, t in self.params.items()}
        named = {name for s in scales or [] if s for name in s}
        self.scale = {name: torch.stack([s[name].to(t.dtype) if s and name in s else torch.ones_like(t[0])
                                         for s in scales]).contiguous()
                      for name, t in self.params.items() if name in named}  # (R, *shape) per scaled parameter
        self.fused_step = None  # the fused numba step (lenet.kernels.step), made at the first train_step

    @property
    def runs(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def keep(self, rows: list[int]) -> None:
        """Regroup: keep only these runs (their parameters and momentum), in this order."""
        idx = torch.tensor(rows, dtype=torch.long)
        self.params = {k: v.detach().index_select(0, idx).requires_grad_(True) for k, v in self.params.items()}
        self.momentum = {k: v.index_select(0, idx) for k, v in self.momentum.items()}
        self.scale = {k: v.index_select(0, idx) for k, v in self.scale.items()}
        if self.fused_step is not None:
            self.fused_step.bind(self.params, self.momentum, len(rows), self.scale)

    def subset(self, rows: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.tensor(rows, dtype=torch.long)
        return {k: v.detach().index_select(0, idx) for k, v in self.params.items()}

    def sgd_step(self, loss: torch.Tensor, lr: float, momentum: float) -> None:
        """Backpropagate `loss` and take one torch.optim.SGD(momentum, no dampening) step:
        buf = m*buf + g (buf starts at g); p -= lr*buf. The gradients come from
        autograd.grad, not .backward(): no .grad tensors, so autograd never copies a
        non-contiguous gradient into one (11% of an n=0 step, profiled)."""
        names = list(self.params)
        params = [self.params[k] for k in names]
        grads = torch.autograd.grad(loss, params)
        grads = [g * self.scale[k] if k in self.scale else g for k, g in zip(names, grads)]
        sgd_momentum(params, grads, [self.momentum[k] for k in names], lr, momentum)

    def train_step(self, h: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                   lr: float, momentum: float) -> None:
        """One SGD + momentum step of every run on its mini-batch: rows idx (R, B) of h (every run's
        inputs at this level), targets (R, B, 20), weight (R, B): each row's weight in the sum of
        squared errors (1 / (m * 20) for a run's m real rows, 0 for padding). On the CPU with the
        kernels on, one numba call (lenet.kernels.step); else forward, autograd and sgd_step."""
        if self.fused_step is None and h.device.type == "cpu" and h.dtype == torch.float32 and kernels.available():
            from lenet.kernels.step import Step
            self.fused_step = Step(self.params, self.momentum, self.level, self.runs, idx.shape[1], self.scale)
        if self.fused_step is not None:
            self.fused_step(h, idx, targets, weight, lr, momentum)
            return
        R, B = idx.shape
        x = h.index_select(0, idx.t().reshape(-1)).view(B, R, *h.shape[1:])  # batch-major
        loss = ((self.forward(x) - targets) ** 2 * weight.unsqueeze(-1)).sum()
        self.sgd_step(loss, lr, momentum)

    def forward(self, h: torch.Tensor, params: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        p = self.params if params is None else params
        B, R = h.shape[:2]
        layers = self.layers
        if self.level < 4 and h.device.type == "cpu" and kernels.available():
            x = kernels.levels(h, self.level, p)  # (R, B, 400)
            layers = layers[4 - self.level:]
        else:
            x = h.reshape(B, R * h.shape[2], *h.shape[3:]) if self.level < 4 else h  # (B, R*C, H, W), a view
        for layer in layers:
            if layer == "c1":
                x = F.conv2d(x, p["c1.weight"].flatten(0, 1), p["c1.bias"].flatten(), groups=R)  # (B, R*6, 28, 28)
            elif layer in ("s2", "s4"):
                coef, bias = p[f"{layer}.coef"].reshape(1, -1, 1, 1), p[f"{layer}.bias"].reshape(1, -1, 1, 1)
                x = F.avg_pool2d(x, 2) * 4.0 * coef + bias  # (B, R*M, H/2, W/2)
            elif layer == "c3":
                k = p["c3.kernels"]  # (R, 60, 5, 5) -> dense (R*16, 6, 5, 5), zeros off the table
                w = k.new_zeros(R, 16 * 6, 5, 5).index_copy(1, self.c3_index, k).view(R * 16, 6, 5, 5)
                x = F.conv2d(x, w, p["c3.bias"].flatten(), groups=R)  # (B, R*16, 10, 10)
            elif layer == "c5":
                if x.dim() != 3:
                    x = x.reshape(B, R, 400).transpose(0, 1)  # (R, B, 400)
                w = p["c5.weight"].view(R, 120, 400).transpose(1, 2)  # (R, 400, 120)
                x = torch.baddbmm(p["c5.bias"].unsqueeze(1), x, w)  # (R, B, 120)
            else:  # f6
                x = x.reshape(B, R, 120).transpose(0, 1) if self.level == 5 else x.reshape(R, B, 120)
                x = torch.baddbmm(p["f6.bias"].unsqueeze(1), x, p["f6.weight"].transpose(1, 2))  # (R, B, 20)
            x = scaled_tanh(x)
        return x
