"""One self-contained HTML page for a reproduction: the paper's Figures 2-5, tables and settings.

plotly.js is inlined once (with the first figure), so the page opens offline.
Every piece of text that comes from meta is escaped.
"""
from __future__ import annotations

import html
import json

from lenet.report import figures
from lenet.report.claims import check, describe
from lenet.config import PAPER_SOURCE_ACCURACY

PAPER_CLAIMS = (
    f"The source net reached {PAPER_SOURCE_ACCURACY:.2%} on its training set (20 characters x 400 samples).",
    "With few samples per class (small k), retaining more levels of the source net gives higher accuracy.",
    "As k grows, the capacity left to train matters more: retaining fewer levels catches up or wins.",
)
FIG_K = (1, 10, 40)  # the paper's Figures 3, 4 and 5
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.cols{display:flex;gap:2em;flex-wrap:wrap}
.cols>div{flex:1;min-width:320px}code{background:#f3f3f3;padding:0 3px}"""


def escape(v) -> str:
    return html.escape(str(v))


def _pct(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.2%}"


def html_table(header: list[str], rows: list[list], left: int = 0) -> str:
    """left = how many leading columns are text (left-aligned)."""
    cls = lambda i: ' class="l"' if i < left else ""
    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{escape(v)}</td>" for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _settings(meta: dict) -> str:
    s = meta.get("settings", {})
    src = meta.get("source_accuracy") or {}
    rows = [
        ["data", f"{meta.get('data', '?')} — {meta.get('data_description', '')}"],
        ["seed", meta.get("seed", "?")],
        ["source classes", "".join(meta.get("source_classes", []))],
        ["target classes", "".join(meta.get("target_classes", []))],
        ["levels n", " ".join(map(str, s.get("levels", [])))],
        ["samples per class k", " ".join(map(str, s.get("samples", [])))],
        ["trials", s.get("trials", "?")],
        ["test characters", f"{s.get('test_per_class', '?')} per class"],
        ["source net: training / held-out accuracy", f"{_pct(src.get('train'))} / {_pct(src.get('heldout'))}"],
        ["source net sha256", s.get("source_sha256", "?")],
        ["recipe", json.dumps(meta.get("recipe", {}))],
        ["engine", meta.get("engine", "?")],
        ["runs", f"{meta.get('runs', '?')}{'' if meta.get('complete') else ' (incomplete)'}"],
        ["time", f"{meta.get('seconds', 0):.0f} s wall, {meta.get('run_seconds', 0):.0f} s in runs"],
    ]
    return html_table(["setting", "value"], rows, left=2)


def report_html(summary: list[dict], runs: list[dict], meta: dict, extra: str = "") -> str:
    """The grid's report; `extra`, HTML of more sections (the readouts side by side), goes before every run."""
    figs = []
    if summary:
        figs.append(figures.accuracy_vs_levels(summary))
        ks = sorted({r["k"] for r in summary})
        for k in [k for k in FIG_K if k in ks] or ks:
            figs.append(figures.min_avg_max(summary, k))
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_height="420px")
             for i, fig in enumerate(figs)]
    src = meta.get("source_accuracy") or {}
    ours = (f"Our source net: {_pct(src.get('train'))} on its training set, "
            f"{_pct(src.get('heldout'))} held out.")
    summary_rows = [[r["n"], r["k"], f"{r['mean']:.2%}", f"{r['min']:.2%}", f"{r['max']:.2%}", r["runs"],
                     _pct(r.get("val")), r.get("capped", "")] for r in summary]
    claim_rows = [[c["text"], c["verdict"], describe(c)] for c in check(runs) if c["verdict"] != "not checked"]
    run_rows = [[r["n"], r["k"], r["trial"], r["seed"], f"{r['train_acc']:.2%}", f"{r['test_acc']:.2%}",
                 r["epochs"], r.get("steps", ""), "yes" if r.get("capped") else "", f"{r['seconds']:.1f}"]
                for r in sorted(runs, key=lambda r: (r["trial"], r["k"], r["n"]))]
    claims = "".join(f"<li>{escape(c)}</li>" for c in PAPER_CLAIMS)
    body = "\n".join([
        "<h1>Knowledge transfer in LeNet-5: reproduction</h1>",
        "<p>Gutstein, Fuentes &amp; Freudenthal, <i>Knowledge Transfer in Deep Convolutional Neural Nets</i>: "
        "the bottom n levels of a source net trained on 20 characters are copied and frozen; the rest learns "
        "20 new characters from k samples per class.</p>",
        f'<div class="cols"><div><h2>The paper says</h2><ul>{claims}</ul></div>'
        f"<div><h2>This run</h2><p>{escape(ours)}</p>{_settings(meta)}</div></div>",
        "<h2>Figures</h2>" + ("".join(parts) if parts else "<p>No finished runs yet.</p>"),
        "<h2>The paper's claims, checked here</h2>",
        html_table(["the paper says", "here", "evidence"], claim_rows, left=3) if claim_rows else "<p>Not checked: "
        "the grid lacks the cells they compare.</p>",
        "<h2>Summary (test accuracy over trials; val: mean validation accuracy; capped: runs that ended at "
        "the training budget without fitting their training set)</h2>",
        html_table(["n", "k", "mean", "min", "max", "runs", "val", "capped"], summary_rows),
        extra,
        "<h2>Every run</h2>",
        html_table(["n", "k", "trial", "seed", "train acc", "test acc", "epochs", "steps", "ended at the budget",
                "seconds"], run_rows),
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>LeNet transfer reproduction — {escape(meta.get('data', ''))}</title>"
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
