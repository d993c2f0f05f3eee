"""A class's pooled drawings on disk, under LENET_HOME/classes:

    classes/K7M2QX/class.json                       code, when opened, open or closed, the salt, members
    classes/K7M2QX/drawings/3f9a.../U+03B1/<id>.png  one drawing, in the folder of its session's tag

A session's tag is a keyed hash of its id with the class's own salt: opaque (it does not give
the session id, which is what opens a session's jobs), stable across restarts, and different
in every class. The teacher sees members as "student 1, 2, ..." in the order they joined;
students see only totals and their own count. Each tag's folder is a lenet.drawing SampleStore
(atomic writes); class.json is rewritten atomically under the class folder's lock.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenet.data import CharacterSet, DataError
from lenet.drawing.store import SampleStore
from lenet.files import FolderLock, write_text

from .codes import clean_code, new_code

META = "class.json"
FORMAT = "lenet-class/1"
_TAG = re.compile(r"^[0-9a-f]{16}$")
LOCK_WAIT = 5.0  # seconds a writer waits for another one to let go of the class folder


class ClassBusy(OSError):
    pass


@dataclass(frozen=True)
class Drawing:
    tag: str
    student: int
    char: str
    id: str
    image: np.ndarray  # (28, 28) uint8


class ClassRoom:
    """One class: its meta data and its drawings (everything read from disk on each call, so every
    session and every restart sees the same)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.code = self.root.name

    # --- meta -----------------------------------------------------------------------------
    def meta(self) -> dict:
        try:
            doc = json.loads((self.root / META).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"class {self.code}: its {META} cannot be read ({type(e).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise DataError(f"class {self.code}: {META} is not a class file ({FORMAT})")
        return doc

    def _update(self, change) -> dict:
        """change(meta) under the class folder's lock, written back atomically."""
        end = time.monotonic() + LOCK_WAIT
        while True:
            try:
                lock = FolderLock(self.root, ".lock", ClassBusy(f"class {self.code} is busy"))
                break
            except ClassBusy:
                if time.monotonic() > end:
                    raise
                time.sleep(0.01)
        try:
            meta = self.meta()
            change(meta)
            write_text(self.root / META, json.dumps(meta, indent=1))
            return meta
        finally:
            lock.release()

    @property
    def is_open(self) -> bool:
        return not self.meta().get("closed", False)

    def close(self, closed: bool = True) -> None:
        self._update(lambda m: m.__setitem__("closed", closed))

    # --- members --------------------------------------------------------------------------
    def tag(self, session: str) -> str:
        """The session's opaque tag in this class."""
        salt = bytes.fromhex(self.meta()["salt"])
        return hashlib.blake2b(session.encode(), key=salt, digest_size=8).hexdigest()

    def join(self, session: str) -> int:
        """Make the session a member (once); its student number."""
        tag = self.tag(session)

        def add(meta):
            members = meta.setdefault("members", {})
            if tag not in members:
                if meta.get("closed"):
                    raise DataError(f"class {self.code} is closed: the teacher no longer takes new members")
                members[tag] = len(members) + 1
        return self._update(add)["members"][tag]

    def student(self, session: str) -> int | None:
        return self.meta().get("members", {}).get(self.tag(session))

    def members(self) -> int:
        return len(self.meta().get("members", {}))

    # --- drawings -------------------------------------------------------------------------
    def _store(self, tag: str) -> SampleStore:
        if not _TAG.match(tag):
            raise DataError(f"{tag!r} is not a member tag")
        return SampleStore(self.root / "drawings" / tag)

    def add(self, session: str, char: str, image28: np.ndarray) -> str:
        """One drawing of `char` from a member session; its sample id."""
        if self.student(session) is None:
            raise DataError(f"join class {self.code} first")
        if not self.is_open:
            raise DataError(f"class {self.code} is closed: the teacher no longer takes drawings")
        return self._store(self.tag(session)).add(char, image28)

    def _tags(self) -> list[str]:
        folder = self.root / "drawings"
        return sorted(p.name for p in folder.iterdir() if _TAG.match(p.name)) if folder.is_dir() else []

    def drawings(self) -> list[Drawing]:
        """Every readable drawing, by student, then character, oldest first (for the teacher)."""
        numbers = self.meta().get("members", {})
        out = []
        for tag in self._tags():
            store = self._store(tag)
            for char in store.characters():
                out += [Drawing(tag, numbers.get(tag, 0), char, sid, img) for sid, img in store.samples(char)]
        return sorted(out, key=lambda d: (d.student, d.char, d.id))

    def remove(self, tag: str, char: str, sample_id: str) -> bool:
        return self._store(tag).delete(char, sample_id)

    def counts(self, session: str | None = None) -> dict[str, int]:
        """Drawings per character: the whole class's, or one session's own."""
        tags = [self.tag(session)] if session is not None else self._tags()
        out: dict[str, int] = {}
        for tag in tags:
            store = self._store(tag)
            for char in store.characters():
                out[char] = out.get(char, 0) + store.count(char)
        return {c: n for c, n in sorted(out.items()) if n}

    def contributions(self) -> list[dict]:
        """Rows of (student, character, drawings), for the teacher's live table."""
        numbers = self.meta().get("members", {})
        rows = []
        for tag in self._tags():
            store = self._store(tag)
            rows += [{"student": numbers.get(tag, 0), "character": c, "drawings": store.count(c)}
                     for c in store.characters() if store.count(c)]
        return sorted(rows, key=lambda r: (r["student"], r["character"]))

    def to_charset(self) -> CharacterSet:
        """The pooled drawings as a labelled set (source "class")."""
        by_char: dict[str, list[np.ndarray]] = {}
        for d in self.drawings():
            by_char.setdefault(d.char, []).append(d.image)
        classes = sorted(by_char)
        images = [img for c in classes for img in by_char[c]]
        labels = [i for i, c in enumerate(classes) for _ in by_char[c]]
        stack = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
        return CharacterSet(stack, np.array(labels, np.int64), classes, "class",
                            f"class {self.code}: {len(stack)} drawings of {len(classes)} characters")


class Classes:
    """Every class under `root` (LENET_HOME/classes)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def open(self) -> ClassRoom:
        """A new class with a fresh code."""
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            folder = self.root / new_code()
            try:
                folder.mkdir()  # exclusive: two teachers never get the same code
            except FileExistsError:
                continue
            write_text(folder / META, json.dumps({"format": FORMAT, "code": folder.name, "opened": time.time(),
                                                  "salt": secrets.token_hex(16), "members": {}, "closed": False},
                                                 indent=1))
            return ClassRoom(folder)
        raise DataError("no free class code after 100 tries")

    def get(self, code: str) -> ClassRoom:
        """The class with this code (as typed), or DataError."""
        code = clean_code(code)
        room = ClassRoom(self.root / code)
        if not (room.root / META).is_file():
            raise DataError(f"no class has the code {code}: check it with your teacher")
        return room

    def all(self) -> list[ClassRoom]:
        """Every class, newest first."""
        found = []
        for p in self.root.glob(f"*/{META}") if self.root.is_dir() else []:
            try:
                found.append((ClassRoom(p.parent).meta().get("opened", 0), ClassRoom(p.parent)))
            except DataError:
                continue  # a damaged class file: that class is skipped, not every class
        return [room for _, room in sorted(found, key=lambda x: x[0], reverse=True)]
