"""Knowledge transfer: copy a source net's bottom n levels and freeze them.

Levels, bottom first: C1, S2, C3, S4, C5 (n = 0..5). The levels above start
fresh from the new net's own initialisation and are the only ones trained.
n = 6 would retain everything and leave nothing to learn, so the paper (and we)
stop at 5.
"""
from __future__ import annotations

import torch.nn as nn

from lenet.config import LAYERS, LEVELS
from lenet.core.model import LeNet5, free_parameters


def check_levels(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= len(LEVELS):
        raise ValueError(f"retained levels n must be an integer 0..{len(LEVELS)} (got {n!r})")
    return n


def transfer(source: LeNet5, n: int, seed: int = 0, n_outputs: int | None = None) -> LeNet5:
    """A new net whose bottom n levels are frozen copies of the source's (F6: n_outputs wide,
    default the source's)."""
    check_levels(n)
    net = LeNet5(n_outputs=source.f6.out_features if n_outputs is None else n_outputs, seed=seed)
    for name in LEVELS[:n]:
        layer = getattr(net, name)
        layer.load_state_dict(getattr(source, name).state_dict())
        layer.requires_grad_(False)
    net.retained = n
    return net


def freeze_bottom(net: nn.Module, n: int) -> nn.Module:
    """Freeze the bottom n levels of an existing net in place."""
    check_levels(n)
    for i, name in enumerate(LAYERS):
        getattr(net, name).requires_grad_(i >= n)
    net.retained = n
    return net


def retained_levels(net: nn.Module) -> int:
    return getattr(net, "retained", 0)


def trainable_fraction(n: int) -> float:
    """Share of the 52,256 free parameters still trained when n levels are retained
    (the paper: 96.7% at n=4, 4.6% at n=5)."""
    check_levels(n)
    counts = free_parameters(LeNet5())
    frozen = sum(counts[name.upper()] for name in LEVELS[:n])
    return 1 - frozen / counts["total"]
