"""One self-contained HTML page about one trained net: its settings, its training curves, its accuracy per
character and its confusion matrix. A browser prints it to a one-page PDF (the print rules below fit
it on A4). plotly.js is inlined once, so the page opens offline.
"""
from __future__ import annotations

from lenet.report import confusion as cm
from lenet.report import figures
from lenet.report.html import CSS, escape, html_table

PRINT = "@media print{body{margin:0;max-width:none;font-size:10px}.js-plotly-plot{break-inside:avoid}}"


def run_summary_html(title: str, settings: dict, records: list[dict], conf: cm.Confusion | None,
                     what: str = "test characters") -> str:
    """settings: {name: value} shown as given; records: the run's epoch records (EpochStats-like dicts);
    conf: its confusion on `what` (None: not measured)."""
    figs = []
    if records:
        chance = 1 / len(conf.classes) if conf else None
        figs.append(figures.training_curves(records, chance=chance))
    if conf is not None:
        figs += [cm.per_class_figure(conf, f"Accuracy per character on {int(conf.matrix.sum()):,} {what}"),
                 cm.figure(conf).update_layout(title=f"Confusion matrix on the {what} ({conf.accuracy:.1%} right)")]
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displayModeBar": False})
             for i, f in enumerate(figs)]
    worst = conf.misreadings()[:10] if conf is not None else []
    body = "\n".join([
        f"<h1>{escape(title)}</h1>",
        "<p>A LeNet-5 after Gutstein, Fuentes &amp; Freudenthal, <i>Knowledge Transfer in Deep Convolutional "
        "Neural Nets</i>: the bottom n levels copied from a source net and frozen, the rest trained on k samples "
        "per class of new characters. Made by LeNet Transfer Lab.</p>",
        "<h2>Settings</h2>", html_table(["setting", "value"], [[k, v] for k, v in settings.items()], left=2),
        "<h2>Training</h2>" + (parts[0] if records else "<p>No training curve was recorded.</p>"),
        "<h2>What it misread</h2>" + ("".join(parts[1 if records else 0:]) if conf is not None else
                                      "<p>Not measured: no test characters.</p>"),
        html_table(["true character", "read as", "samples"], [list(w) for w in worst], left=2) if worst else "",
    ])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}{PRINT}</style></head><body>\n{body}\n</body></html>\n")
