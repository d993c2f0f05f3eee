"""The paper's sampling protocol: a source task, and k-shot target tasks on disjoint characters.

Every draw comes from numpy Generators seeded by (seed, purpose, [trial,] character), so a
class's samples do not depend on which other classes were chosen or in what order.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from lenet.data.base import CharacterSet
from lenet.errors import DataError
from lenet.data.twins import twins_of

PAPER = dict(n_classes=20, source_per_class=400, test_per_class=50)  # 20 chars x 400; test 1,000 = 50 x 20
VAL_PER_CLASS = 20  # not the paper's: a validation set per trial, for choosing the recipe (lenet/config.py)
SEED_TEST, SEED_TRAIN, SEED_SOURCE = 1, 2, 3  # purposes, mixed into the seeds


def class_key(c: str) -> int:
    """A class's number in the seeds: its code point (one character, as EMNIST's), else a stable
    hash of its name (Omniglot's "Korean/character05")."""
    return ord(c) if len(c) == 1 else zlib.crc32(c.encode())


@dataclass
class Split:
    train: CharacterSet
    test: CharacterSet
    classes: list[str]  # labels 0..len-1 of train, test and val index into this
    val: CharacterSet | None = None  # validation set, disjoint from both (transfer splits only)


TWIN_RULES = ("avoid", "allow")


def default_class_split(classes, seed: int = 0, n: int = 20,
                        source_need: int = PAPER["source_per_class"] + 100,
                        twins: str = "avoid") -> tuple[list[str], list[str]]:
    """Two disjoint random sets of n characters (source, target), each in class order.

    `classes` is a class list or a CharacterSet; given a CharacterSet, the source characters
    are drawn only from classes with at least `source_need` samples (400 to train + 100 held
    out), since EMNIST's test split has 20 classes with fewer than 500. With twins="avoid"
    (the default) no target character is a twin of a source character (lenet.data.twins);
    "allow" is the older pick, which ignores twins. The source characters are the same either way.
    """
    if twins not in TWIN_RULES:
        raise DataError(f"twins must be one of {', '.join(TWIN_RULES)} (got {twins!r})")
    counts = classes.counts() if isinstance(classes, CharacterSet) else None
    names = list(classes.classes) if counts is not None else list(classes)
    if 2 * n > len(names):
        raise DataError(f"cannot pick two disjoint sets of {n} characters from {len(names)} classes")
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    rich = [c for c in order if counts is None or counts[c] >= source_need]
    if len(rich) < n:
        raise DataError(f"only {len(rich)} classes have the {source_need} samples a source character needs; "
                        f"need {n}")
    source = rich[:n]
    taken = set(source) | (set().union(*(twins_of(c) for c in source)) if twins == "avoid" else set())
    target = [c for c in order if c not in taken][:n]
    if len(target) < n:
        raise DataError(f"only {len(target)} characters are neither source characters nor their twins; need {n}")
    pos = {c: i for i, c in enumerate(names)}
    return sorted(source, key=pos.get), sorted(target, key=pos.get)


def new_characters(ds: CharacterSet, source_classes, seed: int = 0, n: int = 20, twins: str = "avoid") -> list[str]:
    """The target half of the seed's default class split, or (for a source net on other
    characters) a seeded pick of n characters the source net does not know (nor, with
    twins="avoid", their twins where enough others are left), in class order."""
    known = set(source_classes)
    try:
        targets = default_class_split(ds, seed, n, twins=twins)[1] if 2 * n <= len(ds.classes) else []
    except DataError:  # too few samples per class for a source half (Omniglot's 20 drawers): no default split
        targets = []
    if targets and not set(targets) & known and \
            (twins == "allow" or not any(twins_of(c) & known for c in targets)):
        return targets
    rest = [c for c in ds.classes if c not in known]
    if not rest:
        raise DataError(f"the source net knows every class of {ds.source}: no new characters to transfer to")
    if twins == "avoid":
        free = [c for c in rest if not twins_of(c) & known]
        rest = free if len(free) >= n else rest
    pick = np.random.default_rng(seed).permutation(len(rest))[:n]
    return [rest[i] for i in sorted(pick)]


def check_classes(ds: CharacterSet, chars, name: str) -> None:
    chars = list(chars)
    unknown = [c for c in chars if c not in ds.classes]
    if unknown:
        raise DataError(f"{name}: characters {''.join(unknown)!r} are not in {ds.source}")
    dups = sorted({c for c in chars if chars.count(c) > 1})
    if dups:
        raise DataError(f"{name}: characters {''.join(dups)!r} are listed twice")
    if len(chars) < 2:
        raise DataError(f"{name}: need at least 2 characters, got {len(chars)}")


def rows_of(ds: CharacterSet, c: str) -> np.ndarray:
    return np.flatnonzero(ds.labels == ds.classes.index(c))


def relabel(ds: CharacterSet, rows: list[np.ndarray], chars: list[str]) -> CharacterSet:
    labels = np.concatenate([np.full(len(r), i, np.int64) for i, r in enumerate(rows)])
    idx = np.concatenate(rows)
    return CharacterSet(ds.images[idx], labels, list(chars), ds.source, ds.description)


def source_split(ds: CharacterSet, source_classes, per_class: int = 400, heldout_per_class: int = 100,
                 seed: int = 0) -> Split:
    """per_class training samples per character, and a disjoint held-out test set."""
    chars = list(source_classes)
    check_classes(ds, chars, "source classes")
    train, test = [], []
    for c in chars:
        rows = rows_of(ds, c)
        if len(rows) < per_class + heldout_per_class:
            raise DataError(f"class {c!r} has {len(rows)} samples, need {per_class} + {heldout_per_class} held out")
        rows = np.random.default_rng([seed, SEED_SOURCE, class_key(c)]).permutation(rows)
        train.append(rows[:per_class])
        test.append(rows[per_class:per_class + heldout_per_class])
    return Split(relabel(ds, train, chars), relabel(ds, test, chars), chars)


def source_val(ds: CharacterSet, source_classes, per_class: int = 400, heldout_per_class: int = 100,
                seed: int = 0, val_per_class: int = 40) -> CharacterSet:
    """Validation characters of a source task: up to val_per_class of each character beyond its
    per_class training and heldout_per_class held-out samples (the same seeded permutation as
    `source_split`), so choices about the source net never look at its held-out set."""
    chars = list(source_classes)
    check_classes(ds, chars, "source classes")
    rows = [np.random.default_rng([seed, SEED_SOURCE, class_key(c)]).permutation(rows_of(ds, c))
            [per_class + heldout_per_class:per_class + heldout_per_class + val_per_class] for c in chars]
    return relabel(ds, rows, chars)


def transfer_split(ds: CharacterSet, target_classes, k: int, trial: int = 0, seed: int = 0,
                   test_per_class: int = 50, source_classes=None, val_per_class: int = VAL_PER_CLASS) -> Split:
    """k training samples per target character (a new draw per trial), a validation set and a fixed test set.

    The test set depends on seed only (never on trial or k), so every run is scored on the
    same 50 x 20 = 1,000 characters; training and validation samples come from the rest. For one
    trial the draws are nested: the k=5 samples are the first 5 of the k=10 ones. The validation
    samples are the last `val_per_class` of the trial's permutation of that pool, so they never
    overlap the test set or any k's training samples, and adding them leaves the training draws
    as they were without a validation set.
    """
    chars = list(target_classes)
    check_classes(ds, chars, "target classes")
    overlap = [c for c in chars if source_classes is not None and c in set(source_classes)]
    if overlap:
        raise DataError(f"target classes overlap the source classes: {''.join(overlap)!r}")
    if k < 1:
        raise DataError(f"k (samples per class) must be at least 1, got {k}")
    if val_per_class < 0:
        raise DataError(f"val_per_class must be >= 0, got {val_per_class}")
    train, test, val = [], [], []
    for c in chars:
        rows = rows_of(ds, c)
        if len(rows) < test_per_class + k + val_per_class:
            raise DataError(f"class {c!r} has {len(rows)} samples: too few for {test_per_class} test + "
                            f"{val_per_class} validation + k={k}")
        rows = np.random.default_rng([seed, SEED_TEST, class_key(c)]).permutation(rows)
        test.append(np.sort(rows[:test_per_class]))
        pool = np.random.default_rng([seed, SEED_TRAIN, trial, class_key(c)]).permutation(np.sort(rows[test_per_class:]))
        train.append(pool[:k])
        val.append(np.sort(pool[len(pool) - val_per_class:]))
    return Split(relabel(ds, train, chars), relabel(ds, test, chars), chars,
                 relabel(ds, val, chars) if val_per_class else None)
