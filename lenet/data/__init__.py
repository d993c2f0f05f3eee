"""Character data for LeNet Transfer Lab: EMNIST, NIST SD19 and a built-in synthetic set.

Every loader returns a CharacterSet of 28x28 uint8 images framed the EMNIST way.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lenet.data.base import CharacterSet, to_net_input
from lenet.errors import DataError
from lenet.data.emnist import SUBSET_DIR, find_emnist, is_subset, load_emnist
from lenet.data.omniglot import find_omniglot, load_omniglot
from lenet.data.sd19 import load_sd19
from lenet.data.synthetic import load_synthetic

KINDS = ("synthetic", "emnist", "sd19", "omniglot", "emnist+omniglot")
MIX_EMNIST_PER_CLASS = 20  # emnist+omniglot: EMNIST's classes drawn like Omniglot's, 20 drawings each

__all__ = ["CharacterSet", "DataError", "KINDS", "MIX_EMNIST_PER_CLASS", "active_set", "find_emnist", "info",
           "is_subset", "load", "mix",
           "to_net_input"]


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
    if kind == "omniglot":  # the background alphabets; the one-shot runs: lenet.data.omniglot.load_runs
        ds = load_omniglot(data_dir)
        return ds if per_class is None else _cap(ds, per_class, seed)
    if kind == "emnist+omniglot":  # a background for source nets: docs/omniglot.md
        if data_dir is not None:
            raise DataError("emnist+omniglot takes no --data-dir: it mixes the shipped EMNIST subset and the Omniglot "
                            "background (LENET_OMNIGLOT_DIR, else assets/omniglot)")
        ds = mix(load_emnist(SUBSET_DIR, split), load_omniglot(None), seed)  # the same mix everywhere
        return ds if per_class is None else _cap(ds, per_class, seed)
    raise DataError(f"unknown data kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def mix(emnist: CharacterSet, omniglot: CharacterSet, seed: int = 0) -> CharacterSet:
    """EMNIST's classes, MIX_EMNIST_PER_CLASS drawings of each (a seeded pick, as Omniglot has 20 drawers
    per character), then Omniglot's background characters: one set, both kinds of class names."""
    em = _cap(emnist, MIX_EMNIST_PER_CLASS, seed)
    return CharacterSet(np.concatenate([em.images, omniglot.images]),
                        np.concatenate([em.labels, omniglot.labels + len(em.classes)]),
                        list(em.classes) + list(omniglot.classes), "emnist+omniglot",
                        f"{len(em.classes)} EMNIST classes x {MIX_EMNIST_PER_CLASS} ({em.source}) and "
                        f"{omniglot.description}")


def _cap(ds: CharacterSet, per_class: int, seed: int) -> CharacterSet:
    rng = np.random.default_rng(seed)
    rows = [np.flatnonzero(ds.labels == i) for i in range(len(ds.classes))]
    keep = np.sort(np.concatenate([rng.permutation(r)[:per_class] for r in rows]))
    return ds.subset(keep)


def active_set(kind: str, data_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """Which set `load(kind, data_dir)` reads, in a few words, and from where; nothing is loaded.

    For EMNIST: "full EMNIST" (a release: --data-dir, ../shared/data/emnist or a download),
    else "EMNIST subset (shipped)" (assets/emnist-subset), the default of a fresh clone.
    """
    if kind == "synthetic":
        return "synthetic", None
    if kind == "sd19":
        return "NIST SD19", Path(data_dir) if data_dir is not None else None
    if kind == "omniglot":
        path = find_omniglot(data_dir)
        return ("Omniglot (not found)" if path is None else "Omniglot background"), path
    if kind == "emnist+omniglot":
        return "EMNIST and the Omniglot background", None
    path = find_emnist(data_dir) if data_dir is None else Path(data_dir).expanduser()
    if path is None:
        return "EMNIST (not found)", None
    if not is_subset(path):
        return "full EMNIST", path
    return ("EMNIST subset (shipped)" if path.resolve() == SUBSET_DIR.resolve() else "EMNIST subset"), path


def info(kind: str, data_dir: str | Path | None = None) -> dict:
    active, path = active_set(kind, data_dir)
    ds = load(kind, path if kind == "emnist" else data_dir)
    return {"kind": kind, "active": active, "path": None if path is None else str(path), "source": ds.source,
            "description": ds.description, "n": len(ds), "classes": list(ds.classes), "counts": ds.counts()}
