"""One self-contained HTML page per study: the question, the command, the figures, the tables.

The same pieces as the grid's report (lenet.report.html): plotly.js inlined once, text escaped.
"""
from __future__ import annotations

import json

from lenet.report.html import CSS, escape, html_table


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def study_report(title: str, question: str, command: str, figures: list, summary: list[dict], summary_fields,
                 runs: list[dict], run_fields, meta: dict, extra: list[tuple[str, str]] = ()) -> str:
    """extra: (heading, html already escaped) sections placed after the summary table."""
    parts = [fig.to_html(full_html=False, include_plotlyjs=(i == 0), default_height="460px")
             for i, fig in enumerate(figures)]
    settings = [[k, json.dumps(v) if isinstance(v, (list, dict)) else v] for k, v in meta.get("settings", {}).items()]
    took = f"{meta.get('seconds', 0):.0f} s wall ({meta.get('runs', 0)} of {meta.get('total', '?')} runs" \
           f"{'' if meta.get('complete') else ', incomplete'})"
    body = "\n".join([
        f"<h1>{escape(title)}</h1>",
        f"<p><b>The question.</b> {escape(question)}</p>",
        f"<p><b>The command.</b> <code>{escape(command)}</code> ({escape(took)})</p>",
        "<h2>Figures</h2>" + ("".join(parts) if parts else "<p>No finished runs yet.</p>"),
        "<h2>Summary</h2>",
        html_table(list(summary_fields), [[_cell(r[f]) for f in summary_fields] for r in summary]),
        *[f"<h2>{escape(h)}</h2>{html}" for h, html in extra],
        "<h2>Settings</h2>",
        html_table(["setting", "value"], settings, left=2),
        "<h2>Every run</h2>",
        html_table(list(run_fields), [[_cell(r[f]) for f in run_fields] for r in runs]),
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
