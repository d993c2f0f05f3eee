"""Studies: the questions the paper left open, each a plain function from settings to summary rows.

Each module names its study (NAME), asks its question (QUESTION, two sentences), and gives its
settings (Settings, with Settings.quick() for a ~2-minute version), the study function, its
summary (SUMMARY_FIELDS, summarize) and its figures. Results go to runs.csv, summary.csv,
report.html and meta.json in the output folder, resumably (lenet.studies.common).
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


def run(name: str, settings, source, ds, targets, **kwargs) -> list[dict]:
    """Run study `name` with these settings; its summary rows."""
    mod = get(name)
    return getattr(mod, mod.FUNCTION)(settings, source, ds, targets, **kwargs)


