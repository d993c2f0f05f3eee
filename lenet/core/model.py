"""The paper's LeNet-5 style net (Gutstein et al., Figure 1 and Table 1).

    input 32x32 -> C1 6@28x28 -> S2 6@14x14 -> C3 16@10x10 -> S4 16@5x5
                -> C5 120@1x1 -> F6 20

Every unit uses LeCun's scaled tanh, f(a) = 1.7159 tanh(2a/3), so targets of
+/-1 sit in its linear-ish region. S2 and S4 are LeNet-5's trainable
sub-sampling layers: each map sums each 2x2 tile, multiplies by one learned
coefficient and adds one learned bias. C3 connects its 16 maps to S2's 6 maps
through LeNet-5's sparse table (60 kernels); only those 60 kernels exist as
parameters, so masked-out weights are zero by construction and never counted.
Free parameters: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 2,420 = 52,256.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lenet.config import C3_TABLE, LAYERS, TANH_A, TANH_S

PAPER_TABLE1 = {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 2420, "total": 52256}


class _ScaledTanhFn(torch.autograd.Function):
    """The same forward as A * tanh(S * x), with a two-op backward from the saved tanh,
    A*S*(1 - t^2), instead of autograd's three (27% faster on C1's maps alone; 7% on a
    group of n=0 transfer runs, interleaved A/B)."""

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(x * TANH_S)
        ctx.save_for_backward(t)
        return t * TANH_A

    @staticmethod
    def backward(ctx, grad):
        t, = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad * (TANH_A * TANH_S), t)


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    if x.requires_grad and torch.is_grad_enabled():
        return _ScaledTanhFn.apply(x)
    return TANH_A * torch.tanh(x * TANH_S)


def lecun_uniform_(tensor: torch.Tensor, fan_in: int, generator: torch.Generator, scale=1.0) -> None:
    """LeCun (1998) init: U(-2.4/F, 2.4/F), F the unit's fan-in (`scale` gives per-unit 1/F)."""
    with torch.no_grad():
        u = torch.rand(tensor.shape, generator=generator) * 2 - 1
        tensor.copy_(u * (2.4 / fan_in) * scale)


class Subsample(nn.Module):
    """Trainable 2x2 sub-sampling: coef * (sum of tile) + bias, per map."""

    def __init__(self, maps: int):
        super().__init__()
        self.coef = nn.Parameter(torch.empty(maps))
        self.bias = nn.Parameter(torch.empty(maps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tiles = F.avg_pool2d(x, 2) * 4.0  # (B, M, H/2, W/2) sum of each 2x2 tile
        return tiles * self.coef.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SparseConv(nn.Module):
    """C3: 5x5 convolutions along the 60 connections of C3_TABLE only."""

    def __init__(self, table=C3_TABLE, in_maps: int = 6, k: int = 5):
        super().__init__()
        self.out_maps, self.in_maps, self.k = len(table), in_maps, k
        flat = [o * in_maps + i for o, ins in enumerate(table) for i in ins]
        self.register_buffer("index", torch.tensor(flat, dtype=torch.long), persistent=False)
        self.kernels = nn.Parameter(torch.empty(len(flat), k, k))  # (60, 5, 5)
        self.bias = nn.Parameter(torch.empty(len(table)))

    def full_weight(self) -> torch.Tensor:
        """Dense (16, 6, 5, 5) weight with zeros where the table has no connection."""
        w = self.kernels.new_zeros(self.out_maps * self.in_maps, self.k, self.k)
        w = w.index_copy(0, self.index, self.kernels)
        return w.view(self.out_maps, self.in_maps, self.k, self.k)

    def connection_mask(self) -> torch.Tensor:
        m = torch.zeros(self.out_maps * self.in_maps, dtype=torch.bool)
        m[self.index] = True
        return m.view(self.out_maps, self.in_maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.full_weight(), self.bias)


class _InputConvFn(torch.autograd.Function):
    """conv2d whose input needs no gradient, with a faster weight gradient: the
    correlation of the inputs with the output gradients, as one conv2d that treats the
    batch as channels. oneDNN's own backward for a 1-channel input is 2-3x slower
    (profiled: 30% of a batch-128 step). Same sums, in another order."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x)
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        grad_w = F.conv2d(x.transpose(0, 1), grad.transpose(0, 1)).transpose(0, 1)  # (out, in, k, k)
        return None, grad_w, grad.sum((0, 2, 3))


class InputConv(nn.Conv2d):
    """C1: an ordinary 5x5 convolution of the input image (see _InputConvFn)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad or not torch.is_grad_enabled():
            return super().forward(x)
        return _InputConvFn.apply(x, self.weight, self.bias)


class FullConv(nn.Conv2d):
    """C5: 5x5 kernels on S4's 5x5 maps, i.e. a full connection; computed as one matmul
    (2-3x faster than oneDNN's convolution at batch 16-128, forward + backward), same
    parameters as the conv."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != self.kernel_size:
            return super().forward(x)
        out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
        return out[:, :, None, None]  # (B, 120) -> (B, 120, 1, 1), whatever B (an exported graph keeps it free)


class LeNet5(nn.Module):
    """The paper's net. `forward` returns F6's 20 outputs; `features` returns every level."""

    def __init__(self, n_outputs: int = 20, seed: int = 0, lanes: bool = False):
        super().__init__()
        self.lanes = lanes  # run C1..S4 through lenet.kernels.lanes (the batch in the SIMD lanes) where they can
        self.c1 = InputConv(1, 6, 5)
        self.s2 = Subsample(6)
        self.c3 = SparseConv()
        self.s4 = Subsample(16)
        self.c5 = FullConv(16, 120, 5)
        self.f6 = nn.Linear(120, n_outputs)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int) -> None:
        """LeCun init of every layer from one seeded stream, bottom layer first."""
        g = torch.Generator().manual_seed(seed)
        c3_fan = torch.tensor([len(ins) * 25 for ins in C3_TABLE])  # 75, 100 or 150 per C3 map
        for name in LAYERS:
            layer = getattr(self, name)
            if isinstance(layer, Subsample):
                lecun_uniform_(layer.coef, 4, g)
                lecun_uniform_(layer.bias, 4, g)
            elif isinstance(layer, SparseConv):
                kernel_fan = torch.cat([torch.full((len(ins),), len(ins) * 25) for ins in C3_TABLE])
                lecun_uniform_(layer.kernels, 1, g, scale=(1.0 / kernel_fan).view(-1, 1, 1))
                lecun_uniform_(layer.bias, 1, g, scale=1.0 / c3_fan)
            else:
                fan = layer.weight[0].numel()
                lecun_uniform_(layer.weight, fan, g)
                lecun_uniform_(layer.bias, fan, g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(x, 0)

    def forward_from(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Run the layers above `level` (0 = from the input image) on h."""
        layers = LAYERS[level:]
        if self.lanes and level < 4 and h.device.type == "cpu" and h.dtype == torch.float32:
            from lenet.kernels import lanes as kernels  # numba loads only when a lanes net runs
            if kernels.available():
                h = kernels.levels(h, level, {f"{name}.{p}": t.unsqueeze(0) for name in LAYERS[level:4]
                                              for p, t in getattr(self, name).named_parameters()})
                layers = LAYERS[4:]
        for name in layers:
            h = scaled_tanh(self.pre_activation(name, h))
        return h

    def forward_to(self, x: torch.Tensor, level: int) -> torch.Tensor:
        """Output of the bottom `level` levels (0 returns the input)."""
        for name in LAYERS[:level]:
            x = scaled_tanh(self.pre_activation(name, x))
        return x

    def pre_activation(self, name: str, h: torch.Tensor) -> torch.Tensor:
        if name == "f6":
            h = h.flatten(1)  # (B, 120, 1, 1) -> (B, 120)
        return getattr(self, name)(h)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every level's activations: {'input': (B,1,32,32), 'c1': (B,6,28,28), 's2': (B,6,14,14),
        'c3': (B,16,10,10), 's4': (B,16,5,5), 'c5': (B,120,1,1), 'f6': (B,20)}."""
        out = {"input": x}
        for name in LAYERS:
            x = scaled_tanh(self.pre_activation(name, x))
            out[name] = x
        return out


def free_parameters(model: nn.Module) -> dict[str, int]:
    """Free parameters per layer, in the paper's Table 1 naming."""
    counts = {name.upper(): sum(p.numel() for p in getattr(model, name).parameters()) for name in LAYERS}
    counts["total"] = sum(counts.values())
    return counts


def architecture(model: LeNet5) -> list[dict]:
    """Figure 1 from the live model: per layer its maps, map size and free parameters."""
    x = torch.zeros(1, 1, 32, 32)
    feats = model.features(x)
    params = free_parameters(model)
    rows = [{"layer": "input", "maps": 1, "size": "32x32", "params": 0}]
    for name in LAYERS:
        t = feats[name]
        size = f"{t.shape[-2]}x{t.shape[-1]}" if t.dim() == 4 else "1x1"
        rows.append({"layer": name.upper(), "maps": t.shape[1], "size": size, "params": params[name.upper()]})
    return rows
