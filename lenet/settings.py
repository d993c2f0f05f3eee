"""Every LENET_* environment variable the project reads, each read here and nowhere else.

An operator sets these; the defaults make a fresh clone work. `python -m lenet --help` lists them
from `SETTINGS`, and docs/classroom.md documents each (tests/test_docs.py keeps the two in step).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS = {s.name: s for s in (
    Setting("LENET_HOME", "~/.local/share/lenet-transfer-lab",
            "where the app keeps user work: jobs, sessions' nets and drawings"),
    Setting("LENET_CACHE", "~/.cache/lenet-transfer-lab", "generated and downloaded data (synthetic set, EMNIST zip)"),
    Setting("LENET_DATA", "emnist when found, else synthetic", "the app's data set: synthetic, emnist, or a folder/archive path"),
    Setting("LENET_SOURCE", "the shipped one for the data set", "the app's source net folder"),
    Setting("LENET_DATA_DIR", "../shared/data/emnist", "where the full EMNIST files are looked for first"),
    Setting("LENET_OMNIGLOT_DIR", "../shared/data/omniglot",
            "where the Omniglot archives are looked for first (then assets/omniglot)"),
    Setting("LENET_DATA_DIRS", "the folders the project looks for EMNIST in",
            "folders (os.pathsep-separated) the app may read data from"),
    Setting("LENET_EMNIST_URL", "NIST's gzip.zip", "where the app's Download button fetches the EMNIST zip from"),
    Setting("LENET_DEVICE", "auto", "where to train: auto (CUDA when available), cpu or cuda"),
    Setting("LENET_KERNELS", "numba", "numba: the CPU kernels of C1-S4 and the fused steps; torch: plain PyTorch"),
    Setting("LENET_WORKERS", "the number of cores", "training jobs the app runs at once"),
    Setting("LENET_THREADS", "1", "PyTorch threads per CLI process"),
    Setting("LENET_RAY", "local processes", "a Ray cluster address: the grid and the studies run their runs there"),
    Setting("LENET_TEACHER_PASSWORD", "unset: an open lab",
            "the teacher's password: with it, only the teacher trains source nets, runs grids and studies, "
            "removes drawings and jobs"),
    Setting("LENET_STUDENT_JOBS", "2", "training jobs a student may have queued or running at once (with a teacher)"),
)}


def get(name: str) -> str:
    """The variable's value, stripped ("" when unset); the functions below apply the defaults."""
    if name not in SETTINGS:
        raise KeyError(f"{name} is not one of the project's settings (lenet/settings.py)")
    return (os.environ.get(name) or "").strip()


def path(name: str, default: Path) -> Path:
    value = get(name)
    return Path(value).expanduser() if value else default


def positive_int(name: str) -> int | None:
    """The variable as a positive integer, None when unset; a clear ValueError otherwise."""
    value = get(name)
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer (got {value!r})") from None
    if n < 1:
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    return n


def home() -> Path:
    return path("LENET_HOME", Path.home() / ".local" / "share" / "lenet-transfer-lab")


def cache() -> Path:
    return path("LENET_CACHE", Path.home() / ".cache" / "lenet-transfer-lab")


def describe() -> str:
    """One line per setting, for --help and the docs."""
    return "\n".join(f"  {s.name:<22} {s.help} (default: {s.default})" for s in SETTINGS.values())


def data_dir(project_root: Path) -> Path:
    return path("LENET_DATA_DIR", project_root.parent / "shared" / "data" / "emnist")


def omniglot_dir(project_root: Path) -> Path:
    return path("LENET_OMNIGLOT_DIR", project_root.parent / "shared" / "data" / "omniglot")


def data_dirs() -> list[str]:
    """LENET_DATA_DIRS split into folders ([] when unset)."""
    return [p.strip() for p in get("LENET_DATA_DIRS").split(os.pathsep) if p.strip()]


def device() -> str:
    return get("LENET_DEVICE").lower() or "auto"


def kernels() -> str:
    return get("LENET_KERNELS") or "numba"


def workers() -> int | None:
    return positive_int("LENET_WORKERS")


def threads() -> int:
    return positive_int("LENET_THREADS") or 1


def ray_address() -> str:
    return get("LENET_RAY")


def teacher_password() -> str:
    """"" when unset: no teacher, an open lab (spaces around it are dropped, as for every setting)."""
    return get("LENET_TEACHER_PASSWORD")


def student_jobs() -> int:
    return positive_int("LENET_STUDENT_JOBS") or 2
