"""EMNIST (Cohen et al. 2017) from the official gzip release: a folder of .gz IDX files or gzip.zip itself."""
from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lenet import settings
from lenet.files import ASSETS, PROJECT_ROOT
from lenet.data.base import BYCLASS, CharacterSet
from lenet.errors import DataError
from lenet.data.idx import read_idx

_MERGED = [*"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", *"abdefghnqrt"]  # 47 classes: similar upper/lower merged
# Classes in label order when a release comes without its mapping file.
KNOWN_MAPPINGS = {
    "byclass": BYCLASS,
    "bymerge": _MERGED,
    "balanced": _MERGED,
    "letters": [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ"],  # labels 1..26, upper and lower case merged
    "digits": [*"0123456789"],
    "mnist": [*"0123456789"],
}
TITLES = {"byclass": "ByClass", "bymerge": "ByMerge", "balanced": "Balanced", "letters": "Letters",
          "digits": "Digits", "mnist": "MNIST"}
PARTS = ("train", "test")
ZIP_NAME = "gzip.zip"
MAX_UNZIPPED = 2 << 30  # the official archive's members total ~560 MB; more means a bad archive
SUBSET_DIR = ASSETS / "emnist-subset"  # the shipped subset (lenet/data/subset.py)
PROVENANCE = "subset.json"  # what a subset folder says about itself


def default_dirs() -> list[Path]:
    """Where EMNIST is looked for, best first: the full release (LENET_DATA_DIR, else ../shared/data/emnist
    beside the project, else a download in the cache), then the subset that ships with the project."""
    return [settings.data_dir(PROJECT_ROOT), settings.cache() / "emnist", SUBSET_DIR]


def is_subset(path: str | Path | None) -> bool:
    """True for a folder made by `python -m lenet data subset` (it holds subset.json)."""
    return path is not None and Path(path).is_dir() and (Path(path) / PROVENANCE).is_file()


def provenance(path: str | Path) -> dict:
    """A subset's subset.json: what it was made from, how, and its files' hashes."""
    try:
        return json.loads((Path(path) / PROVENANCE).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{Path(path) / PROVENANCE}: cannot be read ({e})") from None


def file_names(split: str, part: str) -> tuple[str, str]:
    return f"emnist-{split}-{part}-images-idx3-ubyte.gz", f"emnist-{split}-{part}-labels-idx1-ubyte.gz"


class Release:
    """The files of one release, by base name, read from a folder or (safely) from the zip."""

    def __init__(self, path: Path):
        self.path, self.zip, self.files = path, None, {}
        if path.is_dir() and (path / ZIP_NAME).is_file():
            path = self.path = path / ZIP_NAME
        if path.is_dir():
            for folder in (path, path / "gzip"):  # unzipping gzip.zip gives a gzip/ folder
                self.files.update({p.name: p for p in folder.glob("emnist-*") if p.is_file()})
            # the same IDX files uncompressed are fine too: index them under the .gz name
            self.files.update({p.name + ".gz": p for p in path.glob("emnist-*-ubyte") if p.is_file()})
        elif zipfile.is_zipfile(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise DataError(f"{path.name}: damaged zip archive ({e})") from None
            for info in self.zip.infolist():
                if ".." in info.filename or info.filename.startswith(("/", "\\")):
                    raise DataError(f"{path.name}: refusing unsafe member name {info.filename!r}")
                if not info.is_dir():
                    self.files[info.filename.rsplit("/", 1)[-1]] = info
        elif path.exists():
            raise DataError(f"{path}: neither a folder nor a zip archive")
        else:
            raise DataError(f"{path}: no such folder or file")

    def read_idx(self, name: str, ndim: int) -> np.ndarray:
        entry = self.files[name]
        if self.zip is None:
            return read_idx(entry, ndim, name)
        try:
            with self.zip.open(entry) as f:  # read by name into memory, never extracted to disk
                return read_idx(f, ndim, name)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as e:
            raise DataError(f"{self.path.name}: member {name} is damaged ({e})") from None

    def read_text(self, name: str) -> str:
        entry = self.files[name]
        try:
            return entry.read_text() if self.zip is None else self.zip.read(entry).decode()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError,
                UnicodeDecodeError) as e:
            raise DataError(f"{self.path.name}: {name} cannot be read ({e})") from None

    def splits(self) -> set[str]:
        return {n.split("-")[1] for n in self.files if n.startswith("emnist-") and n.count("-") >= 2}


def find_emnist(data_dir: str | Path | None = None, full_only: bool = False) -> Path | None:
    """The folder or zip holding EMNIST files: data_dir if it has them, else the first default that does
    (full_only: never a subset)."""
    for d in [Path(data_dir).expanduser()] if data_dir is not None else default_dirs():
        if full_only and is_subset(d):
            continue
        try:
            if Release(d).splits():
                return d
        except (DataError, OSError, zipfile.BadZipFile):
            continue
    return None


def _mapping(src: Release, split: str) -> tuple[np.ndarray, list[str]]:
    """label -> class index lookup, and the class characters (labels need not start at 0: 'letters')."""
    name = f"emnist-{split}-mapping.txt"
    if name in src.files:
        rows = [line.split() for line in src.read_text(name).splitlines() if line.strip()]
        try:
            pairs = sorted((int(r[0]), chr(int(r[1]))) for r in rows)
        except (ValueError, IndexError) as e:
            raise DataError(f"{name}: expected lines 'label ascii_code' ({e})") from e
    elif split in KNOWN_MAPPINGS:
        first = 1 if split == "letters" else 0
        pairs = list(enumerate(KNOWN_MAPPINGS[split], start=first))
    else:
        raise DataError(f"{name} not found and split {split!r} has no built-in mapping")
    lookup = np.full(256, -1, np.int64)
    for i, (label, _) in enumerate(pairs):
        lookup[label] = i
    return lookup, [c for _, c in pairs]


def load_emnist(data_dir: str | Path | None = None, split: str = "byclass") -> CharacterSet:
    """All parts (train, test) of one EMNIST split that are present, concatenated, upright."""
    path = find_emnist(data_dir) if data_dir is None else Path(data_dir).expanduser()
    if path is None:
        where = " or ".join(str(d) for d in default_dirs())
        raise DataError(f"no EMNIST files found in {where}: looked for {ZIP_NAME} or emnist-*-idx*-ubyte.gz")
    src = Release(path)
    if src.zip is not None and sum(i.file_size for i in src.files.values()) > MAX_UNZIPPED:
        raise DataError(f"{src.path.name}: members total more than {MAX_UNZIPPED >> 30} GiB; not an EMNIST release")
    parts = [p for p in PARTS if any(n in src.files for n in file_names(split, p))]
    if not parts:
        raise DataError(f"{src.path}: no EMNIST {split} files; expected {' and '.join(file_names(split, 'test'))} "
                        f"(and/or the train pair)")
    lookup, classes = _mapping(src, split)
    images, labels = [], []
    for part in parts:
        img_name, lab_name = file_names(split, part)
        for n in (img_name, lab_name):
            if n not in src.files:
                raise DataError(f"{src.path}: {n} is missing (its pair is present)")
        x, y = src.read_idx(img_name, 3), src.read_idx(lab_name, 1)
        if len(x) != len(y):
            raise DataError(f"{img_name}: {len(x)} images but {lab_name} has {len(y)} labels")
        if x.shape[1:] != (28, 28):
            raise DataError(f"{img_name}: images are {x.shape[1]}x{x.shape[2]}, expected 28x28")
        y = lookup[y]
        if (y < 0).any():
            bad = sorted(set(src.read_idx(lab_name, 1)[y < 0].tolist()))
            raise DataError(f"{lab_name}: labels {bad[:5]} are not in the {split} mapping ({len(classes)} classes)")
        images.append(x.transpose(0, 2, 1))  # the release stores every image transposed
        labels.append(y)
    n = sum(len(y) for y in labels)
    title = f"EMNIST {TITLES.get(split, split)} {'+'.join(parts)} split{'s' * (len(parts) > 1)}"
    source, description = f"emnist-{split}-{'+'.join(parts)}", f"{title} (NIST SD19), {n:,} characters"
    if is_subset(src.path):  # said plainly: a net or a result made on it must not pass for the full set's
        which = "the shipped subset" if src.path.resolve() == SUBSET_DIR.resolve() else "a subset"
        per_class = provenance(src.path).get("per_class", "?")
        source, description = f"{source}-subset", f"{title}, {which} (at most {per_class} per class; " \
                                                  f"NIST SD19), {n:,} characters"
    return CharacterSet(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes,
                        source, description)
