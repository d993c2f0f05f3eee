"""Omniglot (Lake, Salakhutdinov & Tenenbaum 2015): 50 alphabets' characters, each drawn by 20 people.

Read from the archives as the dataset publishes them (brendenlake/omniglot, MIT), never unpacked
to disk: the background splits `images_background*.zip` (ALPHABET/characterNN/NNNN_MM.png, 105x105
black ink on white; MM is the drawer) and the one-shot benchmark `all_runs.zip` (runNN/training,
runNN/test, runNN/class_labels.txt). Every image is framed like EMNIST: ink high, strokes redrawn
with EMNIST's stroke width (lenet.ink.strokes), cropped and centred to 28x28 (lenet.ink.framing).

A class is named "ALPHABET/characterNN" (unique across alphabets); `alphabets` groups them back.
"""
from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lenet import settings
from lenet.config import OMNIGLOT_EXCLUDED
from lenet.data.base import CharacterSet
from lenet.errors import DataError
from lenet.files import ASSETS, PROJECT_ROOT
from lenet.ink import strokes
from lenet.ink.framing import frame_character

SHIPPED_DIR = ASSETS / "omniglot"  # the archives as published, with their LICENSE (assets/omniglot/README.md)
BACKGROUND = "images_background*.zip"  # the minimal splits small1/small2, or the full images_background.zip
RUNS = "all_runs.zip"
N_RUNS = 20
LABELS = "class_labels.txt"
MAX_MEMBERS = 100_000  # the full background set has 19,280 images; more means a bad archive
MAX_PNG_BYTES = 1 << 20  # a 105x105 one-bit PNG is ~300 bytes
_IMAGE = re.compile(r"^(?:[^/]+/)?(?P<alphabet>[^/]+)/(?P<character>character\d+)/(?P<file>\d+_(?P<drawer>\d+))\.png$")
_RUN_FILE = re.compile(r"^(?P<run>run\d+)/(?P<part>training|test)/(?P<file>[^/]+\.png)$")


def default_dirs() -> list[Path]:
    """Where the archives are looked for, best first: LENET_OMNIGLOT_DIR (default ../shared/data/omniglot
    beside the project), then the copy that ships in assets/omniglot."""
    return [settings.omniglot_dir(PROJECT_ROOT), SHIPPED_DIR]


def find_omniglot(data_dir: str | Path | None = None, what: str = BACKGROUND) -> Path | None:
    """The folder holding archives named like `what` (data_dir only, when given), else None."""
    for d in [Path(data_dir).expanduser()] if data_dir is not None else default_dirs():
        if d.is_file() and d.match(what) or d.is_dir() and any(d.glob(what)):
            return d
    return None


def _archives(data_dir, what: str) -> list[Path]:
    where = find_omniglot(data_dir, what)
    if where is None:
        looked = data_dir if data_dir is not None else " or ".join(str(d) for d in default_dirs())
        raise DataError(f"no Omniglot archive {what} in {looked}")
    return [where] if where.is_file() else sorted(where.glob(what))


def _open(path: Path) -> zipfile.ZipFile:
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataError(f"{path.name}: not a readable zip archive ({e})") from None
    infos = z.infolist()
    if len(infos) > MAX_MEMBERS:
        raise DataError(f"{path.name}: {len(infos):,} members, more than an Omniglot archive holds")
    for info in infos:
        if ".." in info.filename.split("/") or info.filename.startswith(("/", "\\")):
            raise DataError(f"{path.name}: refusing unsafe member name {info.filename!r}")
    return z


def _png(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: Path) -> np.ndarray:
    """One member as (H, W) float32 ink (1 = ink), read in memory."""
    if info.file_size > MAX_PNG_BYTES:
        raise DataError(f"{where.name}: {info.filename} is {info.file_size:,} bytes, too big for an Omniglot image")
    try:
        with Image.open(io.BytesIO(z.read(info))) as im:
            grey = np.asarray(im.convert("L"), dtype=np.float32)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError) as e:
        raise DataError(f"{where.name}: {info.filename} is damaged ({e})") from None
    return (grey < 128).astype(np.float32)  # black ink on white paper


def frame(ink: np.ndarray) -> np.ndarray:
    """(H, W) ink (0 = paper) -> (28, 28) uint8 framed like EMNIST, strokes at EMNIST's width."""
    return frame_character(strokes.normalise(ink), ink_is_dark=False)


def alphabet_of(name: str) -> str:
    return name.split("/", 1)[0]


def alphabets(classes) -> dict[str, list[str]]:
    """Alphabet -> its class names, in the order given (classes: a list of names or a CharacterSet)."""
    out: dict[str, list[str]] = {}
    for c in getattr(classes, "classes", classes):
        out.setdefault(alphabet_of(c), []).append(c)
    return out


_CACHE: dict[tuple, CharacterSet] = {}


def load_omniglot(data_dir: str | Path | None = None) -> CharacterSet:
    """Every character of the background archives (a folder of images_background*.zip, or one such zip),
    framed to 28x28. An image in two archives (small1 and small2 share Greek and Latin) counts once.
    Labels follow sorted class names, images each class's drawers in order."""
    paths = _archives(data_dir, BACKGROUND)
    key = tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    if key in _CACHE:
        return _CACHE[key]
    found: dict[tuple[str, str], tuple[Path, zipfile.ZipFile, zipfile.ZipInfo]] = {}
    for p in paths:
        z = _open(p)
        for info in z.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".png"):
                continue
            m = _IMAGE.match(info.filename)
            if m is None:
                raise DataError(f"{p.name}: {info.filename} is not laid out as ALPHABET/characterNN/NNNN_MM.png")
            found.setdefault((f"{m['alphabet']}/{m['character']}", m["file"]), (p, z, info))
    if not found:
        raise DataError(f"{', '.join(p.name for p in paths)}: no character images "
                        f"(expected ALPHABET/characterNN/NNNN_MM.png)")
    classes = sorted({c for c, _ in found})
    index = {c: i for i, c in enumerate(classes)}
    order = sorted(found)
    images = np.stack([frame(_png(z, info, p)) for p, z, info in (found[k] for k in order)])
    labels = np.array([index[c] for c, _ in order], np.int64)
    names = "+".join(p.stem.removeprefix("images_") for p in paths)
    ds = CharacterSet(images, labels, classes, f"omniglot-{names}",
                      f"Omniglot {names.replace('_', ' ')} ({len(alphabets(classes))} alphabets, "
                      f"{len(classes)} characters), {len(labels):,} drawings")
    _CACHE[key] = ds
    return ds


@dataclass
class Run:
    """One 20-way one-shot run: a drawing of each of 20 characters to learn from, 20 to classify."""
    name: str
    train: np.ndarray        # (C, 28, 28) uint8, framed; class c is training file c in sorted order
    test: np.ndarray         # (T, 28, 28) uint8, framed; in sorted file order
    answers: np.ndarray      # (T,) int64: the class of each test drawing (class_labels.txt)
    train_ink: list[np.ndarray]  # the drawings as read, (105, 105) bool ink, for image-space baselines
    test_ink: list[np.ndarray]
    train_files: list[str]
    test_files: list[str]


def load_runs(data_dir: str | Path | None = None) -> list[Run]:
    """The one-shot benchmark's runs from all_runs.zip, paired as the dataset's demo pairs them:
    each line of runNN/class_labels.txt names a test file and the training file of its class."""
    path = _archives(data_dir, RUNS)[0]
    z = _open(path)
    members = {i.filename: i for i in z.infolist() if not i.is_dir()}
    runs_found = sorted({m["run"] for n in members if (m := _RUN_FILE.match(n))})
    if not runs_found:
        raise DataError(f"{path.name}: no runs (expected runNN/training/*.png and runNN/test/*.png)")
    runs = []
    for run in runs_found:
        label_name = f"{run}/{LABELS}"
        if label_name not in members:
            raise DataError(f"{path.name}: {label_name} is missing")
        try:
            text = z.read(members[label_name]).decode()
        except (zipfile.BadZipFile, zlib.error, OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path.name}: {label_name} cannot be read ({e})") from None
        pairs = [line.split() for line in text.splitlines() if line.strip()]
        if not pairs or any(len(p) != 2 for p in pairs):
            raise DataError(f"{path.name}: {label_name} must hold lines 'TEST_FILE TRAIN_FILE'")
        train_files = sorted({t for _, t in pairs})
        test_files = sorted(s for s, _ in pairs)
        answer_of = dict(pairs)
        for f in train_files + test_files:
            if f not in members:
                raise DataError(f"{path.name}: {label_name} names {f}, which is not in the archive")
        train_ink = [_png(z, members[f], path) > 0 for f in train_files]
        test_ink = [_png(z, members[f], path) > 0 for f in test_files]
        runs.append(Run(run, np.stack([frame(i.astype(np.float32)) for i in train_ink]),
                        np.stack([frame(i.astype(np.float32)) for i in test_ink]),
                        np.array([train_files.index(answer_of[f]) for f in test_files], np.int64),
                        train_ink, test_ink, train_files, test_files))
    return runs


def alphabet_split(ds: CharacterSet, source_classes, chars, k: int, trial: int = 0, seed: int = 0):
    """A transfer split for Omniglot characters: k drawers of each to train (1..19), the other 20 - k to
    test (drawn as transfer_split draws them: the test drawers by seed, the training ones by trial), no
    validation set; the grid's 50 test characters per class do not exist here."""
    from lenet.data.protocol import transfer_split

    per = min(ds.counts()[c] for c in chars) if chars else 0
    if not 1 <= k < per:
        raise DataError(f"k must be 1..{per - 1} for Omniglot characters: each has {per} drawings and at least "
                        f"one must be left to test on (got k = {k})")
    return transfer_split(ds, chars, k, trial, seed, test_per_class=per - k, source_classes=source_classes,
                          val_per_class=0)


def grid_alphabets(ds: CharacterSet, source_classes=(), n: int = 20, exclude=OMNIGLOT_EXCLUDED) -> list[str]:
    """The alphabets a grid split may take its n new characters from: at least n characters each that the
    source net does not know, `exclude` left out (lenet/config.py), in sorted order."""
    known = set(source_classes)
    return sorted(a for a, cs in alphabets(ds).items()
                  if a not in set(exclude) and sum(c not in known for c in cs) >= n)


def alphabet_characters(ds: CharacterSet, source_classes=(), seed: int = 0, n: int = 20,
                        exclude=OMNIGLOT_EXCLUDED) -> tuple[str, list[str]]:
    """(alphabet, its n new characters) of the grid's class split `seed`: the alphabet is grid_alphabets'
    number seed (mod their count: seeds 0..A-1 take each once), the characters a seeded pick of its
    characters the source net does not know, in class order."""
    eligible = grid_alphabets(ds, source_classes, n, exclude)
    if not eligible:
        raise DataError(f"no alphabet of {ds.source} has {n} characters the source net does not know"
                        f"{' (' + ', '.join(exclude) + ' left out)' if exclude else ''}")
    alphabet = eligible[seed % len(eligible)]
    known = set(source_classes)
    rest = [c for c in alphabets(ds)[alphabet] if c not in known]
    pick = np.random.default_rng([seed, zlib.crc32(alphabet.encode())]).permutation(len(rest))[:n]
    return alphabet, [rest[i] for i in sorted(pick)]
