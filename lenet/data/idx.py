"""IDX file format (LeCun's MNIST format, also used by EMNIST): read with strict checks; write (tests, the subset)."""
from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from lenet.errors import DataError

MAGIC = {1: 2049, 3: 2051}  # uint8 labels, uint8 images
KIND = {1: "IDX1 label", 3: "IDX3 image"}
MAX_ITEMS = 10_000_000  # EMNIST ByClass train is 697,932; more is a corrupt header
MAX_SIDE = 1024


def read_idx(src: str | Path | bytes | BinaryIO, ndim: int | None = None, name: str | None = None) -> np.ndarray:
    """Read an IDX1/IDX3 uint8 array from a path, bytes or binary stream (gzip or raw).

    The header is checked before the payload is read, so a corrupt header never
    triggers a huge allocation; the payload must have exactly the announced length.
    """
    if isinstance(src, (str, Path)):
        name = name or Path(src).name
        with open(src, "rb") as f:
            return read_idx(f, ndim, name)
    name = name or "IDX data"
    f = io.BytesIO(src) if isinstance(src, (bytes, bytearray)) else src
    head = f.read(2)
    f = gzip.GzipFile(fileobj=_Prefixed(head, f), mode="rb") if head == b"\x1f\x8b" else _Prefixed(head, f)
    try:
        return _read(f, ndim, name)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{name}: cannot be read ({e})") from e


def _read(f, ndim: int | None, name: str) -> np.ndarray:
    header = f.read(4)
    magic = struct.unpack(">I", header)[0] if len(header) == 4 else None
    dims = header[3] if magic is not None else None
    if ndim is not None and magic != MAGIC[ndim]:
        raise DataError(f"{name}: not an {KIND[ndim]} file (magic {magic}, expected {MAGIC[ndim]})")
    if magic not in MAGIC.values():
        raise DataError(f"{name}: not an IDX file (magic {magic}, expected 2049 or 2051)")
    raw = f.read(4 * dims)
    if len(raw) < 4 * dims:
        raise DataError(f"{name}: truncated: the header ends after {4 + len(raw)} bytes")
    shape = struct.unpack(f">{dims}I", raw)
    if shape[0] > MAX_ITEMS or any(s > MAX_SIDE for s in shape[1:]) or 0 in shape[1:]:
        raise DataError(f"{name}: implausible dimensions {tuple(shape)}")
    expected = int(np.prod(shape))
    data = f.read(expected)
    extra = len(f.read(1))
    if len(data) < expected:
        raise DataError(f"{name}: truncated: expected {expected} bytes, found {len(data)}")
    if extra:
        raise DataError(f"{name}: trailing data: expected {expected} bytes, found more")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


class _Prefixed(io.RawIOBase):
    """A stream with already-read bytes put back in front (so we can sniff the gzip magic)."""

    def __init__(self, head: bytes, f):
        self.head, self.f = head, f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.head:
            n = min(len(b), len(self.head))
            b[:n], self.head = self.head[:n], self.head[n:]
            return n
        chunk = self.f.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self.readall()
        out = bytearray()
        while len(out) < n:  # raw streams may return short reads; IDX payloads need exact sizes
            chunk = super().read(n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)


def write_idx(path: str | Path, array: np.ndarray, compresslevel: int = 1) -> None:
    """Write a (N,) or (N, H, W) uint8 array as IDX1/IDX3; gzip when the name ends in .gz.

    The gzip header carries no timestamp, so the same array always gives the same bytes.
    """
    a = np.ascontiguousarray(array, dtype=np.uint8)
    if a.ndim not in MAGIC:
        raise DataError(f"IDX arrays must have 1 or 3 dimensions, got shape {a.shape}")
    data = struct.pack(f">I{a.ndim}I", MAGIC[a.ndim], *a.shape) + a.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, compresslevel, mtime=0) if path.suffix == ".gz" else data)
