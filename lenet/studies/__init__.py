"""Studies: the questions the paper left open, each a plain function from settings to summary rows.

Each module names its study (NAME), asks its question (QUESTION, two sentences), and gives its
settings (Settings, with Settings.quick() for a ~2-minute version), the study function, its
summary (SUMMARY_FIELDS, summarize) and its figures. A module may name PRESETS ({name: what it is}),
other settings made by Settings.PRESET(seed, quick=...) (source-classes: `hundreds`). Results go to
runs.csv, summary.csv, report.html and meta.json in the output folder, resumably (lenet.studies.common).
"""
from __future__ import annotations

import importlib

NAMES = ("finetune", "partial", "source-classes", "class-choice", "controls")
BY_COST = ("partial", "class-choice", "controls", "source-classes", "finetune")  # `study all`: the quickest first


def get(name: str):
    """The study module called name."""
    if name not in NAMES:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(NAMES)}")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def settings(name: str, seed: int = 0, *, quick: bool = False, preset: str | None = None):
    """Study `name`'s checked settings: its defaults, its quick version, or one of its PRESETS (quick or not)."""
    mod = get(name)
    if preset is None:
        return (mod.Settings.quick(seed) if quick else mod.Settings(seed=seed)).check()
    presets = getattr(mod, "PRESETS", {})
    if preset not in presets:
        raise ValueError(f"study {name} has no preset {preset!r}" +
                         (f"; its presets: {', '.join(presets)}" if presets else " (it has none)"))
    return getattr(mod.Settings, preset)(seed, quick=quick).check()


def run(name: str, settings, source, ds, targets, **kwargs) -> list[dict]:
    """Run study `name` with these settings; its summary rows."""
    mod = get(name)
    return getattr(mod, mod.FUNCTION)(settings, source, ds, targets, **kwargs)


