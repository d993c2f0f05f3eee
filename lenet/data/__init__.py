"""Character data for LeNet Transfer Lab: EMNIST, NIST SD19 and a built-in synthetic set.

Every loader returns a CharacterSet of 28x28 uint8 images framed the EMNIST way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import CharacterSet, DataError, to_net_input
from .emnist import find_emnist, load_emnist
from .sd19 import load_sd19
from .synthetic import load_synthetic

KINDS = ("synthetic", "emnist", "sd19")

__all__ = ["CharacterSet", "DataError", "KINDS", "find_emnist", "info", "load", "to_net_input"]


def load(kind: str, data_dir: str | Path | None = None, *, split: str = "byclass", seed: int = 0,
         per_class: int | None = None) -> CharacterSet:
    """Load a character set; per_class caps the samples per class (a seeded random pick)."""
    if kind == "synthetic":
        return load_synthetic(seed, per_class)
    if kind == "sd19":
        if data_dir is None:
            raise DataError("sd19 needs data_dir: the NIST SD19 by_class folder")
        return load_sd19(data_dir, per_class, seed)
    if kind == "emnist":
        ds = load_emnist(data_dir, split)
        return ds if per_class is None else _cap(ds, per_class, seed)
    raise DataError(f"unknown data kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def _cap(ds: CharacterSet, per_class: int, seed: int) -> CharacterSet:
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(ds.labels == i) for i in range(len(ds.classes))]
    keep = np.sort(np.concatenate([rng.permutation(r)[:per_class] for r in rows]))
    return ds.subset(keep)


def info(kind: str, data_dir: str | Path | None = None) -> dict:
    ds = load(kind, data_dir)
    return {"kind": kind, "source": ds.source, "description": ds.description, "n": len(ds),
            "classes": list(ds.classes), "counts": ds.counts()}
