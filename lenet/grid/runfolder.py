"""A run folder: one resumable table of runs on disk, for the grid (`reproduce`), its readouts and
every study.

Each finished run goes into its CSV the moment it ends (the file rewritten atomically), so a
kill loses at most the runs in progress and a rerun goes on from there. meta.json holds the
settings before any run starts; reopening a folder of another kind or with other settings is
refused rather than mixing two tables in one. A folder is locked while it is open, so two
processes never interleave their writes.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lenet.files import FolderLock, write_text

RUNS, SUMMARY, REPORT, META = "runs.csv", "summary.csv", "report.html", "meta.json"
REPRODUCTION = "reproduction"  # the kind of a grid's folder; a study's folder is of its study's name


class RunsFileError(ValueError):
    """An existing run folder (its CSV or meta.json) that cannot be trusted or does not match these settings."""


def _bool(v: str) -> bool:
    if v not in ("True", "False"):
        raise ValueError(f"{v!r} is not True or False")
    return v == "True"


@dataclass(frozen=True)
class Table:
    """A CSV's columns: the key fields that name a run, then what the run measured."""
    key: tuple[str, ...]
    result: tuple[str, ...]
    types: dict  # field -> int | float | str | bool
    missing: tuple[str, ...] = ()  # float fields that may be NaN (not measured); every other number is finite

    @property
    def fields(self) -> tuple[str, ...]:
        return self.key + self.result

    def key_of(self, row: dict) -> tuple:
        return tuple(row[f] for f in self.key)

    def parse(self, field: str, text: str):
        kind = self.types[field]
        return _bool(text) if kind is bool else kind(text)


def cell_text(v, floats: str | None = None) -> str:
    """A CSV cell: floats in full (repr, so they read back exactly) unless `floats` formats them."""
    if isinstance(v, float):
        return format(v, floats) if floats else repr(v)
    return "" if v is None else str(v)


def parse_cell(text: str):
    """A CSV cell read back as a number where it is one (int before float), else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path) -> list[dict]:
    """A CSV file's rows, each cell a number where it is one (parse_cell)."""
    with open(path, newline="") as f:
        return [{c: parse_cell(v) for c, v in row.items()} for row in csv.DictReader(f)]


def csv_text(fields, rows: list[dict], floats: str | None = None) -> str:
    """The rows as CSV text, header first."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([cell_text(r[f], floats) for f in fields])
    return buf.getvalue()


def read_rows(path: Path, table: Table, planned: set | None = None,
              check: Callable[[dict], str | None] | None = None) -> list[dict]:
    """The finished runs in a CSV, every value parsed and checked: the header, the number and type of
    values, finite numbers, a key among `planned` (when given) and seen once, and check(row) (a
    reason it is wrong, or None). Anything odd is a RunsFileError naming the file and line."""
    try:
        rows = list(csv.reader(io.StringIO(path.read_text())))
    except UnicodeDecodeError:
        raise RunsFileError(f"{path}: not a text file; move it away to start over") from None
    if not rows or tuple(rows[0]) != table.fields:
        raise RunsFileError(f"{path}: the header is not {','.join(table.fields)}; move the file away to start over")
    out, seen = [], set()
    for line, values in enumerate(rows[1:], start=2):
        where = f"{path} line {line}"
        if len(values) != len(table.fields):
            raise RunsFileError(f"{where}: expected {len(table.fields)} values, found {len(values)}")
        try:
            row = {f: table.parse(f, v) for f, v in zip(table.fields, values)}
        except ValueError as e:
            raise RunsFileError(f"{where}: {e}") from None
        if any(isinstance(v, float) and not math.isfinite(v) and not (math.isnan(v) and f in table.missing)
               for f, v in row.items()):
            raise RunsFileError(f"{where}: every number must be finite")
        key = table.key_of(row)
        name = ", ".join(f"{f}={v}" for f, v in zip(table.key, key))
        if planned is not None and key not in planned:
            raise RunsFileError(f"{where}: {name} is not a run of this folder's plan")
        if key in seen:
            raise RunsFileError(f"{where}: {name} appears twice")
        wrong = check(row) if check else None
        if wrong:
            raise RunsFileError(f"{where}: {wrong}")
        seen.add(key)
        out.append(row)
    return out


class RunFolder:
    """The output folder of one table of runs (or nothing, with out_dir None), locked while open.

    `kind` is REPRODUCTION or a study's name: a study's meta.json records it as "study", so a
    folder of another study (or a grid) is refused, as is one whose settings differ."""

    def __init__(self, out_dir, kind: str, settings: dict):
        self.out = Path(out_dir) if out_dir is not None else None
        self.kind, self.old, self.lock = kind, {}, None
        self.settings = json.loads(json.dumps(settings))  # as meta.json will hold it (tuples become lists)
        if self.out is None:
            return
        if self.out.exists() and not self.out.is_dir():
            raise RunsFileError(f"{self.out}: exists and is not a folder")
        self.out.mkdir(parents=True, exist_ok=True)
        what = "reproduction" if kind == REPRODUCTION else "study"
        self.lock = FolderLock(self.out, ".reproduce.lock", RunsFileError(f"{self.out} is in use by another {what}"))
        try:
            self.old = self._old_meta()
        except Exception:
            self.close()
            raise

    def _describe(self, kind: str) -> str:
        return "a reproduction" if kind == REPRODUCTION else f"the study {kind!r}"

    def _old_meta(self) -> dict:
        meta_path = self.out / META
        if not meta_path.exists():
            if (self.out / RUNS).exists():
                raise RunsFileError(f"{self.out / RUNS} exists without {META}, so its settings are unknown; "
                                    f"use another output folder")
            return {}
        try:
            meta = json.loads(meta_path.read_text())
            old = meta["settings"]
            kind = meta.get("study", REPRODUCTION)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError):
            raise RunsFileError(f"{meta_path}: not a run folder's meta.json; use another output folder") from None
        if kind != self.kind:
            raise RunsFileError(f"{self.out} holds {self._describe(kind)}, not {self._describe(self.kind)}; "
                                f"use another output folder")
        if old != self.settings:
            diff = sorted(k for k in set(old) | set(self.settings) if old.get(k) != self.settings.get(k))
            what = "a reproduction" if kind == REPRODUCTION else f"a {kind} study"
            raise RunsFileError(f"{self.out} holds {what} with other settings ({', '.join(diff)} differ); "
                                f"use another output folder or remove it")
        return meta

    def read(self, table: Table, planned: set | None = None, check=None, name: str = RUNS) -> list[dict]:
        """The finished rows of one of the folder's CSVs ([] when there is none)."""
        if self.out is None or not (self.out / name).exists():
            return []
        return read_rows(self.out / name, table, planned, check)

    def write(self, name: str, text: str) -> None:
        if self.out is not None:
            write_text(self.out / name, text)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> "RunFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
