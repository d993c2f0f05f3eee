"""A compact real subset of EMNIST that ships with the project: a fresh clone's default data.

`python -m lenet data subset` makes it from a full release: at most `per_class` characters
of every class (a seeded pick; classes with fewer keep all theirs), in the release's own
format (gz IDX, images stored transposed, the mapping file), so the EMNIST loader reads it
like the release, plus `subset.json` saying what it was made from and how. The same input
and command give the same bytes (gzip without a timestamp, at level 9).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from lenet.errors import DataError
from lenet.data.emnist import PROVENANCE, SUBSET_DIR, file_names, Release, find_emnist, is_subset
from lenet.data.idx import write_idx

PER_CLASS = 500  # the paper's 400 training + 100 held-out characters of a source class
COMMAND = "python -m lenet data subset --per-class {per_class} --seed {seed}"  # + --out FOLDER (this folder)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_subset(src: str | Path | None, out: str | Path = SUBSET_DIR, per_class: int = PER_CLASS, seed: int = 0,
                split: str = "byclass", part: str = "test") -> dict:
    """Write the subset of release `src` (default: the full release found) to `out`; returns the provenance."""
    if per_class < 1:
        raise DataError(f"per class must be at least 1, got {per_class}")
    src_path = Path(src).expanduser() if src is not None else find_emnist(full_only=True)
    if src_path is None:
        raise DataError("no full EMNIST release found to make a subset from; give its folder or gzip.zip "
                        "(--data-dir), or fetch it with `python -m lenet data download emnist`")
    if is_subset(src_path):
        raise DataError(f"{src_path} is itself a subset; make one from a full release")
    out = Path(out).expanduser()
    if out.resolve() == src_path.resolve():
        raise DataError(f"--out {out} is the release being read")
    source = Release(src_path)
    img_name, lab_name = file_names(split, part)
    mapping = f"emnist-{split}-mapping.txt"
    for n in (img_name, lab_name):
        if n not in source.files:
            raise DataError(f"{source.path}: {n} is missing")
    images, labels = source.read_idx(img_name, 3), source.read_idx(lab_name, 1)  # as stored: transposed
    if len(images) != len(labels):
        raise DataError(f"{img_name}: {len(images)} images but {lab_name} has {len(labels)} labels")
    # each class's pick depends on (seed, label) only, and the release's order is kept
    keep = np.sort(np.concatenate([
        np.random.default_rng([seed, int(c)]).permutation(np.flatnonzero(labels == c))[:per_class]
        for c in np.unique(labels)]))

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".making-{os.getpid()}"
    tmp.mkdir()
    try:
        write_idx(tmp / img_name, images[keep], compresslevel=9)
        write_idx(tmp / lab_name, labels[keep], compresslevel=9)
        files = [img_name, lab_name]
        if mapping in source.files:
            (tmp / mapping).write_text(source.read_text(mapping))
            files.append(mapping)
        counts = np.bincount(labels[keep], minlength=int(labels.max()) + 1)
        prov = {
            "what": f"EMNIST {split} {part} split, at most {per_class} characters per class (a seeded pick)",
            "made_from": {n: {"sha256": _sha256(_raw(source, n)), "items": len(a)}
                          for n, a in ((img_name, images), (lab_name, labels))},
            "split": split, "part": part, "per_class": per_class, "seed": seed, "n": int(len(keep)),
            "counts_by_label": {str(i): int(k) for i, k in enumerate(counts) if k},
            "files": {n: _sha256((tmp / n).read_bytes()) for n in files},
            "command": COMMAND.format(per_class=per_class, seed=seed),
            "citation": "Cohen, Afshar, Tapson & van Schaik (2017), EMNIST: an extension of MNIST to "
                        "handwritten letters; NIST Special Database 19",
        }
        (tmp / PROVENANCE).write_text(json.dumps(prov, indent=1) + "\n")
        for n in [*files, PROVENANCE]:
            os.replace(tmp / n, out / n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return prov


def _raw(source: Release, name: str) -> bytes:
    """The file's bytes as the release holds them (for the provenance hash)."""
    entry = source.files[name]
    return entry.read_bytes() if source.zip is None else source.zip.read(entry)

