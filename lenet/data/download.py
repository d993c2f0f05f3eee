"""Resumable HTTP download (urllib only) and the official EMNIST release."""
from __future__ import annotations

import http.client
import os
import zipfile
from pathlib import Path
from typing import Callable
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen


from lenet import settings
from lenet.errors import DataError

EMNIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
EMNIST_SIZE = 561_753_746  # bytes of the official gzip.zip (EMNIST v1.0); a different size is a bad download


def download(url: str, dest: str | Path, expected_size: int | None = None,
             progress: Callable[[int, int], None] | None = None, chunk: int = 1 << 20, timeout: float = 60) -> Path:
    """Fetch url to dest through dest.part, resuming a previous .part with an HTTP Range request.

    dest only appears once the whole file has arrived with the expected size; an interrupted
    transfer leaves the .part for the next call to resume.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if expected_size is not None and have > expected_size:
        have = 0  # a .part longer than the file cannot be a prefix of it
    try:
        if expected_size is None or have < expected_size:
            headers = {"Range": f"bytes={have}-"} if have else {}
            with urlopen(Request(url, headers=headers), timeout=timeout) as r:
                if r.status != 206:
                    have = 0  # the server ignored Range: start over
                total = have + int(r.headers.get("Content-Length") or 0) or (expected_size or 0)
                with open(part, "ab" if have else "wb") as f:
                    while block := r.read(chunk):
                        f.write(block)
                        have += len(block)
                        if progress:
                            progress(have, total)
    except HTTPError as e:
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except (URLError, OSError, http.client.HTTPException) as e:  # a partial .part stays, to resume
        raise DataError(f"download of {url} failed: {getattr(e, 'reason', e)}") from e
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        part.unlink()
        raise DataError(f"download of {url} has {size:,} bytes, expected {expected_size:,}; removed it")
    os.replace(part, dest)
    return dest


def download_emnist(dest_dir: str | Path | None = None, url: str = EMNIST_URL, expected_size: int | None = EMNIST_SIZE,
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Download the official EMNIST gzip.zip into dest_dir (default: the cache) and check it."""
    from lenet.data.emnist import ZIP_NAME, find_emnist

    dest = Path(dest_dir or settings.cache() / "emnist") / ZIP_NAME
    if not dest.is_file():
        download(url, dest, expected_size, progress)
    if not zipfile.is_zipfile(dest) or find_emnist(dest) is None:
        dest.unlink()
        raise DataError(f"{url} did not deliver a zip with EMNIST files (emnist-*-idx*-ubyte.gz); removed it")
    return dest
