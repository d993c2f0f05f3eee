"""Which server folders a browser user may read datasets from.

The app serves many browsers; a path typed into a page must not let anyone probe the
server's files. Only paths inside the data folders the operator configured are opened,
after resolving symlinks and `..`; anything else gets one message that is the same whether
the path exists or not, so it tells nothing about the server. The command line and
environment variables (LENET_DATA, --data-dir) are the operator's own and are not limited.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lenet import settings
from lenet.errors import DataError
from lenet.files import atomic_write
from lenet.data.emnist import default_dirs, load_emnist

ENV = "LENET_DATA_DIRS"
MAX_UPLOAD_MB = 200  # Streamlit's own default upload cap; an EMNIST zip of one split's .gz files fits


def data_roots() -> list[Path]:
    """LENET_DATA_DIRS (folders separated by os.pathsep), else the folders the project looks for
    EMNIST in (lenet.data.emnist.default_dirs)."""
    folders = settings.data_dirs() or [str(d) for d in default_dirs()]
    return [Path(os.path.realpath(Path(p.strip()).expanduser())) for p in folders]


def allowed_path(path: str | Path, roots: list[Path] | None = None) -> Path:
    """`path` resolved, if it lies inside one of `roots` (default: data_roots()); else a DataError.

    A relative path is looked up inside each root in turn (the first that holds it wins).
    The refusal names the allowed folders, never what is (or is not) at `path`.
    """
    roots = [Path(os.path.realpath(r)) for r in (data_roots() if roots is None else roots)]
    text = str(path).strip()
    if not text or "\x00" in text:
        raise DataError(_refusal(roots))
    p = Path(text).expanduser()
    candidates = [p] if p.is_absolute() else [r / p for r in roots]
    inside = []
    for c in candidates:
        resolved = Path(os.path.realpath(c))
        if any(resolved == r or resolved.is_relative_to(r) for r in roots):
            inside.append(resolved)
    if not inside:
        raise DataError(_refusal(roots))
    return next((c for c in inside if c.exists()), inside[0])


def _refusal(roots: list[Path]) -> str:
    """The same words whatever was asked; the folders are counted, not named (a browser sees this)."""
    where = f"{len(roots)} folder(s)" if roots else "none are configured"
    return (f"only datasets inside the server's data folders can be opened here ({where}; a relative path is "
            f"looked up inside each); the operator sets them with {ENV}. Or upload an EMNIST zip archive.")


def store_upload(data: bytes, name: str, folder: Path, max_mb: int = MAX_UPLOAD_MB) -> Path:
    """An uploaded EMNIST zip checked (size, zip, the EMNIST reader's checks) and kept in `folder`;
    the path to load it from. Nothing is left behind when it is refused."""

    if len(data) > max_mb << 20:
        raise DataError(f"{name}: {len(data) / 2**20:.0f} MB is over the {max_mb} MB upload limit")
    if not data.startswith(b"PK"):
        raise DataError(f"{name}: not a zip archive")
    folder = Path(folder)
    path = folder / f"emnist-upload-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    try:
        load_emnist(path)
    except DataError as e:
        path.unlink(missing_ok=True)
        raise DataError(f"{name}: {e}") from None
    return path
