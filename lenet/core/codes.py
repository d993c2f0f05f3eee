"""Target codes: each class is a point in {-1,+1}^20 that F6 is trained towards.

The paper gives each character a random 20-bit vector, since random codes sit
further apart than 1-of-N codes; a prediction is the class whose code is nearest
to F6's output.
"""
from __future__ import annotations

import torch


def random_codes(n_classes: int, bits: int = 20, seed: int = 0) -> torch.Tensor:
    """(n_classes, bits) distinct random +/-1 codes, fixed by seed."""
    if not 2 <= n_classes <= 2 ** bits:
        raise ValueError(f"need between 2 and {2 ** bits} classes for {bits}-bit codes (got {n_classes})")
    g = torch.Generator().manual_seed(seed)
    while True:
        codes = torch.randint(0, 2, (n_classes, bits), generator=g).float() * 2 - 1
        if len(torch.unique(codes, dim=0)) == n_classes:
            return codes


def one_hot_codes(n_classes: int, bits: int = 20) -> torch.Tensor:
    """1-of-N codes in the same +/-1 range, for comparison with random codes."""
    if not 2 <= n_classes <= bits:
        raise ValueError(f"1-of-N codes need between 2 and {bits} classes (got {n_classes})")
    codes = -torch.ones(n_classes, bits)
    codes[torch.arange(n_classes), torch.arange(n_classes)] = 1.0
    return codes


def make_codes(kind: str, n_classes: int, bits: int = 20, seed: int = 0) -> torch.Tensor:
    if kind == "random":
        return random_codes(n_classes, bits, seed)
    if kind == "one-hot":
        return one_hot_codes(n_classes, bits)
    raise ValueError(f"unknown code kind {kind!r}: use 'random' or 'one-hot'")


def transfer_codes(kind: str, n_classes: int, seed: int, bits: int = 20) -> torch.Tensor:
    """Codes for a transfer run's new characters: seeded apart from the source net's codes
    (same run seed), so the new characters get new codes. Plain and fast paths share this."""
    return make_codes(kind, n_classes, bits, seed + 7919)


def min_hamming(codes: torch.Tensor) -> int:
    """Smallest number of differing bits between two classes' codes."""
    diff = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    diff.fill_diagonal_(codes.shape[1] + 1)
    return int(diff.min())


def distances(outputs: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(B, C) Euclidean distance from each output to each class code."""
    return torch.cdist(outputs, codes)


def decode(outputs: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """(B,) index of the nearest code."""
    return distances(outputs, codes).argmin(1)
