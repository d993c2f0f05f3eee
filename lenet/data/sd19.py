"""NIST Special Database 19, `by_class` layout: <hex ASCII code>/hsf_*/*.png, 128x128 black ink on white."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lenet.data.base import CharacterSet
from lenet.errors import DataError
from lenet.ink.framing import frame_character


def _class_dirs(root: Path) -> dict[str, Path]:
    """Folder per character, keyed by the character its hex name encodes ("4a" -> 'J')."""
    out = {}
    for d in root.iterdir():
        try:
            c = chr(int(d.name, 16))
        except ValueError:
            continue
        if d.is_dir() and len(d.name) == 2 and c.isalnum():
            out[c] = d
    return out


def load_sd19(data_dir: str | Path, per_class: int | None = None, seed: int = 0) -> CharacterSet:
    """Frame every PNG (or a seeded random per_class of each class) the EMNIST way."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: SD19 folder not found (expected the by_class layout: 30/, 41/, 61/, ...)")
    dirs = _class_dirs(root)
    if not dirs:
        raise DataError(f"{root}: no SD19 class folders (named by hex ASCII code, e.g. 30/ for '0')")
    classes = sorted(dirs, key=ord)  # ASCII order = 0-9, A-Z, a-z, as in EMNIST ByClass
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i, c in enumerate(classes):
        # only hsf_* hold the writers' forms; train_XX folders in SD19 duplicate them
        files = sorted(p for h in dirs[c].glob("hsf_*") if h.is_dir() for p in h.glob("*.png"))
        if per_class is not None and len(files) > per_class:
            files = [files[j] for j in sorted(rng.choice(len(files), per_class, replace=False))]
        for p in files:
            try:
                with Image.open(p) as im:
                    images.append(frame_character(np.asarray(im.convert("L")), ink_is_dark=True))
            except (OSError, DataError) as e:
                raise DataError(f"{p}: not a usable character image ({e})") from e
        labels += [i] * len(files)
    if not images:
        raise DataError(f"{root}: the class folders hold no hsf_*/*.png images")
    return CharacterSet(np.stack(images), np.array(labels, np.int64), classes, "sd19",
                        f"NIST SD19 by_class ({root.name}), {len(labels):,} characters")
