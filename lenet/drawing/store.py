"""The Teach page's drawn samples: a folder per character, one 28x28 PNG per sample.

    root/U+03B1/18c2f0a1b2c3d4e5f6.png     (the character "α")
    root/U+0041/...                         (the character "A")

A character's folder is its code points (`U+03B1`, joined by `_`), never the raw
name, so any character is a safe, reversible folder name. A sample is written
to a hidden temporary name and renamed, so a crash never leaves half a PNG under
a `*.png` name. A zip import is checked completely (paths, sizes, every PNG)
before anything is written.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import stat
import time
import unicodedata
import warnings
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from lenet.data import CharacterSet, DataError
from lenet.files import atomic_write
from lenet.ink.framing import frame_character

MANIFEST = "manifest.json"
FORMAT = "lenet-samples/1"
MAX_NAME = 8  # characters in a character's name
MAX_PNG_BYTES = 1 << 20  # one sample is ~300 bytes; 1 MB leaves room for photos of a character
MAX_PNG_PIXELS = 1 << 20
_ID = re.compile(r"^[0-9a-f]{16,40}$")
_CODE = re.compile(r"^U\+([0-9A-F]{4,6})$")
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db")  # added by desktop zip tools; ignored


def clean_name(char) -> str:
    """The canonical form of a character's name, or DataError saying why it cannot be one."""
    if not isinstance(char, str):
        raise DataError(f"a character's name must be text, got {type(char).__name__}")
    name = unicodedata.normalize("NFC", char.strip())
    if not 1 <= len(name) <= MAX_NAME:
        raise DataError(f"a character's name must be 1 to {MAX_NAME} characters long (got {len(name)})")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cs")]
    if bad:
        raise DataError(f"a character's name cannot contain U+{ord(bad[0]):04X} "
                        "(a control character or lone surrogate)")
    return name


def folder_name(char: str) -> str:
    return "_".join(f"U+{ord(c):04X}" for c in clean_name(char))


def char_of_folder(folder: str) -> str:
    """Inverse of folder_name; DataError for any other folder name."""
    parts = folder.split("_")
    codes = [_CODE.match(p) for p in parts]
    if not all(codes):
        raise DataError(f"folder {folder!r} is not a character folder (expected e.g. U+0041)")
    try:
        char = "".join(chr(int(m.group(1), 16)) for m in codes)
    except (ValueError, OverflowError):
        raise DataError(f"folder {folder!r} names a code point beyond Unicode") from None
    if folder_name(char) != folder:
        raise DataError(f"folder {folder!r} is not the canonical folder of {char!r}")
    return char


def check_image(image) -> np.ndarray:
    a = np.asarray(image) if isinstance(image, np.ndarray) else None
    if a is None or a.shape != (28, 28) or a.dtype != np.uint8:
        desc = f"{a.shape} {a.dtype}" if a is not None else type(image).__name__
        raise DataError(f"a sample must be a (28, 28) uint8 image, got {desc}")
    if not a.any():
        raise DataError("a sample must not be blank")
    return a


def encode_png(image28: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(check_image(image28), mode="L").save(buf, "PNG")
    return buf.getvalue()


def decode_png(data: bytes, what: str) -> np.ndarray:
    """PNG bytes -> (28, 28) uint8 ink-high sample; other sizes are framed like EMNIST."""
    if len(data) > MAX_PNG_BYTES:
        raise DataError(f"{what}: {len(data):,} bytes is too large for a sample PNG")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise DataError(f"{what}: not a PNG file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if im.format != "PNG" or w * h > MAX_PNG_PIXELS:
                raise DataError(f"{what}: a {w}x{h} image is too large for a sample")
            im.load()
            gray = np.asarray(im.convert("L"))
        except DataError:
            raise
        except Exception as e:  # Pillow raises many types for damaged files; all mean "unreadable"
            raise DataError(f"{what}: unreadable PNG ({type(e).__name__}: {str(e)[:80]})") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    dark_ink = border.mean() > 127  # paper is light: ink is dark
    if gray.shape == (28, 28):
        gray = 255 - gray if dark_ink else gray
        if not gray.any():
            raise DataError(f"{what}: the sample is blank")
        return np.ascontiguousarray(gray)
    return frame_character(gray, ink_is_dark=dark_ink)


def new_id() -> str:
    """Sortable by time of creation, unique across processes."""
    return f"{time.time_ns():016x}{secrets.token_hex(3)}"


class SampleStore:
    """Drawn samples under `root`; `problems` lists files that could not be read."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._problems: dict[str, str] = {}

    @property
    def problems(self) -> list[str]:
        return [f"{path}: {why}" for path, why in sorted(self._problems.items())]

    def _dir(self, char: str) -> Path:
        return self.root / folder_name(char)

    def characters(self) -> list[str]:
        """Every character with a folder, sorted by name."""
        if not self.root.is_dir():
            return []
        chars = []
        for d in self.root.iterdir():
            if d.is_dir() and not d.name.startswith("."):
                try:
                    chars.append(char_of_folder(d.name))
                except DataError:
                    continue  # not ours: leave it alone
        return sorted(chars)

    def _files(self, char: str) -> list[Path]:
        d = self._dir(char)
        return sorted(p for p in d.glob("*.png") if _ID.match(p.stem)) if d.is_dir() else []

    def count(self, char: str) -> int:
        return len(self._files(char))

    def add(self, char: str, image28: np.ndarray) -> str:
        data = encode_png(image28)
        d = self._dir(char)
        d.mkdir(parents=True, exist_ok=True)
        sid = new_id()
        atomic_write(d / f"{sid}.png", data)
        return sid

    def samples(self, char: str) -> list[tuple[str, np.ndarray]]:
        """(id, image28) for each readable sample, oldest first; unreadable files go to `problems`."""
        out = []
        for p in self._files(char):
            rel = str(p.relative_to(self.root))
            try:
                out.append((p.stem, decode_png(p.read_bytes(), rel)))
                self._problems.pop(rel, None)
            except (DataError, OSError) as e:
                self._problems[rel] = str(e).removeprefix(f"{rel}: ")
        return out

    def delete(self, char: str, sample_id: str) -> bool:
        """Remove one sample; False if it was already gone."""
        if not isinstance(sample_id, str) or not _ID.match(sample_id):
            raise DataError(f"{sample_id!r} is not a sample id")
        p = self._dir(char) / f"{sample_id}.png"
        self._problems.pop(str(p.relative_to(self.root)), None)
        try:
            p.unlink()
            return True
        except FileNotFoundError:
            return False

    def remove_character(self, char: str) -> None:
        d = self._dir(char)
        if not d.is_dir():
            return
        # Rename first so a crash mid-delete never leaves a half-emptied character behind.
        doomed = d.with_name(f".deleted-{d.name}-{secrets.token_hex(4)}")
        os.replace(d, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        self._problems = {k: v for k, v in self._problems.items() if not k.startswith(d.name + os.sep)}

    def to_charset(self) -> CharacterSet:
        """Characters with at least one readable sample, as a labelled set (source "drawn")."""
        images, labels, classes = [], [], []
        for char in self.characters():
            got = [img for _, img in self.samples(char)]
            if got:
                labels += [len(classes)] * len(got)
                classes.append(char)
                images += got
        stack = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
        return CharacterSet(stack, np.array(labels, np.int64), classes, "drawn",
                            f"{len(stack)} drawn samples of {len(classes)} characters")

    def export_zip(self) -> bytes:
        """Every readable sample as folder/id.png, plus manifest.json: folder -> character."""
        buf = io.BytesIO()
        manifest = {}
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for char in self.characters():
                folder = folder_name(char)
                manifest[folder] = char
                for sid, img in self.samples(char):
                    zf.writestr(f"{folder}/{sid}.png", encode_png(img))
            zf.writestr(MANIFEST, json.dumps({"format": FORMAT, "characters": manifest},
                                             ensure_ascii=False, indent=1))
        return buf.getvalue()

    def import_zip(self, data: bytes, max_total: int = 50 << 20, max_files: int = 5000) -> dict[str, int]:
        """Merge a zip made by export_zip (new ids); returns samples added per character.

        Everything is checked before the first write; any problem is a DataError naming
        the member and the reason, and the store is left untouched.
        """
        parsed = read_zip(data, max_total, max_files)
        added: dict[str, int] = {}
        for char, images in parsed.items():
            for img in images:
                self.add(char, img)
            added[char] = len(images)
        return added


def _member_path(info: zipfile.ZipInfo) -> list[str]:
    """The member's path parts, or DataError if extracting it could escape a folder."""
    name = info.filename
    if "\\" in name or "\x00" in name:
        raise DataError(f"zip member {name!r}: backslashes and NUL are not allowed in paths")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"zip member {name!r}: absolute paths are not allowed")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise DataError(f"zip member {name!r}: '..', '.' and empty path parts are not allowed")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DataError(f"zip member {name!r}: symbolic links are not allowed")
    if info.flag_bits & 0x1:
        raise DataError(f"zip member {name!r}: encrypted members are not supported")
    return parts


def read_zip(data: bytes, max_total: int = 50 << 20, max_files: int = 5000) -> dict[str, list[np.ndarray]]:
    """Validate a samples zip completely; {character: [image28, ...]}; writes nothing."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"expected the zip file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_total:
        raise DataError(f"the zip file is {len(data):,} bytes (limit {max_total:,})")
    try:
        return _read_zip(data, max_total, max_files)
    except DataError:
        raise
    except Exception as e:  # a damaged archive can fail in zipfile, zlib or struct in many ways
        raise DataError(f"the zip file is damaged ({type(e).__name__}: {str(e)[:100]})") from None


def _read_zip(data: bytes, max_total: int, max_files: int) -> dict[str, list[np.ndarray]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError("the file is not a zip archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_files + 1:
            raise DataError(f"the zip holds {len(infos):,} members (limit {max_files:,} samples)")
        total = sum(i.file_size for i in infos)
        if total > max_total:
            raise DataError(f"the zip unpacks to {total:,} bytes (limit {max_total:,}): refusing a zip bomb")
        members: list[tuple[zipfile.ZipInfo, list[str]]] = []
        manifest_info = None
        for info in infos:
            parts = _member_path(info)
            if info.filename.startswith(_JUNK[0]) or parts[-1] in _JUNK[1:]:
                continue
            if info.is_dir():
                if len(parts) != 1:
                    raise DataError(f"zip member {info.filename!r}: unexpected nested folder")
                continue
            if parts == [MANIFEST]:
                manifest_info = info
            elif len(parts) == 2 and parts[1].lower().endswith(".png"):
                members.append((info, parts))
            else:
                raise DataError(f"zip member {info.filename!r}: expected <character folder>/<sample>.png "
                                f"or {MANIFEST}")
        manifest = _read_manifest(zf, manifest_info) if manifest_info else None
        out: dict[str, list[np.ndarray]] = {}
        for info, (folder, _) in members:
            where = f"zip member {info.filename!r}"
            if manifest is not None and folder not in manifest:
                raise DataError(f"{where}: folder {folder!r} is not listed in {MANIFEST}")
            try:
                char = char_of_folder(folder)
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            if info.file_size > MAX_PNG_BYTES:
                raise DataError(f"{where}: {info.file_size:,} bytes is too large for a sample PNG")
            with zf.open(info) as f:
                raw = f.read(MAX_PNG_BYTES + 1)
            out.setdefault(char, []).append(decode_png(raw, where))
        if not out:
            raise DataError("the zip holds no sample PNGs")
        return out


def _read_manifest(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, str]:
    if info.file_size > 1 << 20:
        raise DataError(f"{MANIFEST}: {info.file_size:,} bytes is too large")
    try:
        doc = json.loads(zf.read(info).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{MANIFEST}: not valid JSON ({str(e)[:80]})") from None
    chars = doc.get("characters") if isinstance(doc, dict) else None
    if not isinstance(chars, dict):
        raise DataError(f"{MANIFEST}: expected an object with a 'characters' mapping of folder -> character")
    for folder, char in chars.items():
        if not isinstance(char, str):
            raise DataError(f"{MANIFEST}: folder {folder!r} maps to {char!r}, not a character name")
        try:
            expected = folder_name(char)
        except DataError as e:
            raise DataError(f"{MANIFEST}: folder {folder!r}: {e}") from None
        if expected != folder:
            raise DataError(f"{MANIFEST}: folder {folder!r} maps to {char!r}, whose folder is {expected!r}")
    return chars
