"""Core data types shared by every loader: the character set, the net input transform."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


# EMNIST ByClass order; also the default mapping when a release ships no mapping file.
BYCLASS = [*"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]


@dataclass
class CharacterSet:
    images: np.ndarray  # (N, 28, 28) uint8, upright, ink 255 on black 0
    labels: np.ndarray  # (N,) int64 indexes into classes
    classes: list[str]  # one character per class
    source: str  # short tag, e.g. "emnist-byclass-test"
    description: str  # one human line

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        n = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(k) for c, k in zip(self.classes, n)}

    def subset(self, idx) -> CharacterSet:
        idx = np.asarray(idx)
        return CharacterSet(self.images[idx], self.labels[idx], list(self.classes), self.source, self.description)

def to_net_input(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 32, 32) float32 in LeNet-5's range.

    LeCun et al. (1998) centre 28x28 digits in a 32x32 field so stroke ends reach the
    centre of the top feature detectors, and map background to -0.1 and ink to 1.175
    so the mean input is roughly 0 and the variance roughly 1.
    """
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).float()  # (N, 28, 28)
    x = torch.nn.functional.pad(x, (2, 2, 2, 2))  # (N, 32, 32), background 0
    return (x * (1.275 / 255.0) - 0.1).unsqueeze(1)  # (N, 1, 32, 32)
