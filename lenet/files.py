"""Where the project's files are, and writing them safely.

One atomic writer (a reader never sees half a file, a crash never leaves one) and one
exclusive folder lock, shared by checkpoints, run folders, the job store and Teach's drawings.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ASSETS = PROJECT_ROOT / "assets"  # what ships: source nets, the EMNIST subset, shipped results


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, both made durable."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # never matches a *.png or *.csv glob
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename itself durable, not only the data
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, text.encode())


class FolderLock:
    """An exclusive lock on a folder (a `name` file inside it), so two processes never interleave
    their writes there; `busy` is raised if another process holds it."""

    def __init__(self, folder: str | Path, name: str, busy: Exception):
        import fcntl

        self.f = open(Path(folder) / name, "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.f.close()
            raise busy from None

    def release(self) -> None:
        self.f.close()
