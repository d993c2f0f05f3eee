"""Jobs on disk, so that a server restart loses nothing.

One folder per job under the store's root (`<LENET_HOME>/jobs/<id>/`): `job.json` (who owns
it, its label and page parameters, its state; once finished its records, i.e. the curves),
and what is needed to run it again: the nets it starts from (safetensors), the training
sets it was given (`.npz`, read without pickle) and plain JSON settings. Its result, when
that is a net (a finished or stopped transfer run), is kept beside them. Every file is
written atomically; a job that was queued or running when the server died is read back as
`interrupted`, with everything needed to resume it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from lenet.files import atomic_write
from lenet.data import CharacterSet
from lenet.data.protocol import Split

JOB, RESULT = "job.json", "result"


class JobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def folder(self, job_id: int) -> Path:
        return self.root / str(int(job_id))

    # --- writing -----------------------------------------------------------------------------
    def create(self, job_id: int, record: dict, nets: dict | None = None, splits: dict | None = None) -> None:
        """A new job's folder: its inputs first, job.json last (a folder without it is ignored)."""
        from lenet.core import checkpoint
        d = self.folder(job_id)
        d.mkdir(parents=True, exist_ok=True)
        for name, net in (nets or {}).items():
            checkpoint.save(net, d / _safe(name))
        for name, split in (splits or {}).items():
            _save_split(d / f"{_safe(name)}.npz", split)
        self._write(job_id, record)

    def update(self, job_id: int, **fields) -> None:
        record = self.read(job_id)
        if record is not None:
            record.update(fields)
            self._write(job_id, record)

    def finish(self, job_id: int, result: Any = None, **fields) -> None:
        """The final state and records; a net result is kept as `result/`."""
        from lenet.core import checkpoint
        from lenet.core.net import Net
        if isinstance(result, Net):
            checkpoint.save(result, self.folder(job_id) / RESULT)
            fields["has_result"] = True
        self.update(job_id, **fields)

    def remove(self, job_id: int) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def _write(self, job_id: int, record: dict) -> None:
        atomic_write(self.folder(job_id) / JOB, json.dumps(record).encode())

    # --- reading -----------------------------------------------------------------------------
    def read(self, job_id: int) -> dict | None:
        try:
            return json.loads((self.folder(job_id) / JOB).read_text())
        except (OSError, ValueError):
            return None

    def records(self) -> list[dict]:
        """Every readable job.json, by id (a damaged one is skipped, never fatal)."""
        if not self.root.is_dir():
            return []
        out = []
        for d in self.root.iterdir():
            if d.name.isdigit():
                rec = self.read(int(d.name))
                if isinstance(rec, dict) and rec.get("id") == int(d.name):
                    out.append(rec)
        return sorted(out, key=lambda r: r["id"])

    def net(self, job_id: int, name: str):
        from lenet.core import checkpoint
        return checkpoint.load(self.folder(job_id) / _safe(name))

    def split(self, job_id: int, name: str) -> Split:
        return _load_split(self.folder(job_id) / f"{_safe(name)}.npz")

    def result(self, job_id: int):
        return self.net(job_id, RESULT)


def _safe(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"not a job file name: {name!r}")
    return name


def _save_split(path: Path, split: Split) -> None:
    import io
    arrays = {}
    for part in ("train", "test"):
        cs: CharacterSet = getattr(split, part)
        arrays[f"{part}_images"], arrays[f"{part}_labels"] = cs.images, cs.labels
    meta = {"classes": list(split.classes),
            **{f"{p}_{f}": getattr(getattr(split, p), f) for p in ("train", "test") for f in ("source", "description")},
            **{f"{p}_classes": list(getattr(split, p).classes) for p in ("train", "test")}}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _load_split(path: Path) -> Split:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        parts = {p: CharacterSet(z[f"{p}_images"], z[f"{p}_labels"], meta[f"{p}_classes"], meta[f"{p}_source"],
                                 meta[f"{p}_description"]) for p in ("train", "test")}
    return Split(parts["train"], parts["test"], meta["classes"])
