"""Plotly figures built from plain data (lists, dicts, arrays): the paper's Figures 1-5 and live curves.

Used by the app pages and the HTML report alike, so nothing here knows about streamlit.
Each k (samples per class) keeps one colour in every figure.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lenet.config import LEVELS

LEVEL_LABELS = ["0 (none)"] + [f"{n} C1" if n == 1 else f"{n} C1-{LEVELS[n - 1].upper()}" for n in range(1, 6)]
K_COLOURS = {1: "#d62728", 5: "#ff7f0e", 10: "#2ca02c", 20: "#1f77b4", 40: "#9467bd"}
_EXTRA = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=50), hovermode="x unified")


def k_colour(k: int) -> str:
    return K_COLOURS.get(k, _EXTRA[k % len(_EXTRA)])


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _levels_axis(fig: go.Figure, ns, short: bool = False, **where) -> None:
    """n on the x axis, labelled with the retained levels ("2 C1-S2"), or the bare n where the figure is
    narrow (the labels would collide)."""
    ns = sorted(set(ns)) or list(range(6))
    fig.update_xaxes(tickmode="array", tickvals=ns, ticktext=[str(n) if short else LEVEL_LABELS[n] for n in ns],
                     title_text="retained levels n", **where)


def accuracy_vs_levels(summary: list[dict], reference: list[dict] | None = None,
                       reference_name: str = "shipped") -> go.Figure:
    """Figure 2: mean test accuracy against retained levels n, one line per k. Rows with "ci_lo" and
    "ci_hi" (the 95% interval across class splits) get error bars; `reference` rows are drawn dashed
    and faint beside."""
    fig = go.Figure()
    for k in sorted({r["k"] for r in reference or []}):
        rows = sorted((r for r in reference if r["k"] == k), key=lambda r: r["n"])
        fig.add_trace(go.Scatter(
            x=[r["n"] for r in rows], y=[r["mean"] for r in rows], mode="lines", name=f"{reference_name}, k = {k}",
            line=dict(color=_rgba(k_colour(k), 0.45), dash="dash"), legendgroup=f"ref{k}",
            hovertemplate="%{y:.1%}<extra>" + f"{reference_name}, k = {k}" + "</extra>"))
    for k in sorted({r["k"] for r in summary}):
        rows = sorted((r for r in summary if r["k"] == k), key=lambda r: r["n"])
        spread = all("ci_lo" in r for r in rows)
        fig.add_trace(go.Scatter(
            x=[r["n"] for r in rows], y=[r["mean"] for r in rows], mode="lines+markers", name=f"k = {k}",
            line=dict(color=k_colour(k)),
            error_y=dict(type="data", array=[r["ci_hi"] - r["mean"] for r in rows],
                         arrayminus=[r["mean"] - r["ci_lo"] for r in rows], visible=True) if spread else None,
            customdata=[[r.get("min", r.get("lo")), r.get("max", r.get("hi")), r["runs"]] for r in rows],
            hovertemplate="mean %{y:.1%} (" + ("range of split means" if spread else "min") +
                          " %{customdata[0]:.1%} - %{customdata[1]:.1%}, %{customdata[2]} runs)<extra>k = "
                          + str(k) + "</extra>"))
    fig.update_layout(title="Mean test accuracy vs. retained levels, per samples per class k", **LAYOUT)
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    _levels_axis(fig, [r["n"] for r in summary] + [r["n"] for r in reference or []])
    return fig


def min_avg_max(summary: list[dict], k: int) -> go.Figure:
    """Figures 3-5: min, average and max test accuracy over the trials against n, for one k."""
    rows = sorted((r for r in summary if r["k"] == k), key=lambda r: r["n"])
    if not rows:
        raise ValueError(f"no results for k = {k}")
    x = [r["n"] for r in rows]
    c = k_colour(k)
    fig = go.Figure([
        go.Scatter(x=x, y=[r["max"] for r in rows], mode="lines+markers", name="max",
                   line=dict(color=c, dash="dot")),
        go.Scatter(x=x, y=[r["min"] for r in rows], mode="lines+markers", name="min",
                   line=dict(color=c, dash="dot"), fill="tonexty", fillcolor=_rgba(c, 0.15)),
        go.Scatter(x=x, y=[r["mean"] for r in rows], mode="lines+markers", name="average",
                   line=dict(color=c, width=3)),
    ])
    # Two short lines: the three figures sit side by side, a third of the page wide each.
    fig.update_layout(title=f"Min, average and max<br>test accuracy, k = {k}", **LAYOUT)
    fig.update_layout(margin_t=95)  # room for the two-line title
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    _levels_axis(fig, x, short=True)
    return fig


def _xy(records: list[dict], key: str, x_key: str) -> dict:
    """x and y of the records that have a value for key (test_acc is None between evaluations)."""
    pts = [(r[x_key], r[key]) for r in records if r.get(key) is not None]
    return dict(x=[p[0] for p in pts], y=[p[1] for p in pts])


def training_curves(records: list[dict], x_key: str = "epoch", chance: float | None = None,
                    references: list[tuple[str, float]] = ()) -> go.Figure:
    """Loss (left) and train/test accuracy (right) against epoch (or step) from EpochStats-like dicts.
    `chance` (1 / classes) and `references` [(label, accuracy)] are drawn as horizontal lines on the right."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss (MSE to codes)", "accuracy"))
    fig.add_trace(go.Scatter(**_xy(records, "train_loss", x_key), mode="lines+markers", name="train loss",
                             line=dict(color="#1f77b4")), 1, 1)
    # train acc wide and solid, test acc thin and dashed on top: where they agree both stay visible
    fig.add_trace(go.Scatter(**_xy(records, "train_acc", x_key), mode="lines+markers", name="train acc",
                             line=dict(color="#ff7f0e", width=5), marker=dict(size=9)), 1, 2)
    fig.add_trace(go.Scatter(**_xy(records, "test_acc", x_key), mode="lines+markers", name="test acc",
                             line=dict(color="#2ca02c", width=2, dash="dash"), marker=dict(size=5)), 1, 2)
    lines = ([(f"chance ({chance:.0%})", chance)] if chance else []) + list(references)
    for i, (label, y) in enumerate(lines):
        fig.add_hline(y=y, row=1, col=2, line=dict(color="#888888" if i == 0 and chance else "#9467bd",
                                                   dash="dot", width=1.5),
                      annotation_text=label, annotation_position="top left", annotation_font_size=11)
    fig.update_xaxes(title_text=x_key)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=380, **LAYOUT)
    # the legend under the plots: the chart is often half a page wide, and both plots need the room
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0), margin_b=80)
    return fig


def compare_runs(runs: list[dict], x_key: str = "epoch") -> go.Figure:
    """Several runs' test (solid) and train (dotted) accuracy on one chart; runs = [{label, records}]."""
    palette = list(K_COLOURS.values()) + list(_EXTRA)
    fig = go.Figure()
    for i, run in enumerate(runs):
        c = palette[i % len(palette)]
        fig.add_trace(go.Scatter(**_xy(run["records"], "test_acc", x_key), mode="lines+markers",
                                 name=f"{run['label']} test", line=dict(color=c), legendgroup=str(i)))
        fig.add_trace(go.Scatter(**_xy(run["records"], "train_acc", x_key), mode="lines",
                                 name=f"{run['label']} train", line=dict(color=c, dash="dot"),
                                 legendgroup=str(i)))
    fig.update_layout(title="Accuracy of the compared runs", height=400, **LAYOUT)
    fig.update_xaxes(title_text=x_key)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.02])
    return fig


def architecture_figure(rows: list[dict], retained: int | None = None) -> go.Figure:
    """Figure 1 as a row of boxes, one per layer (maps @ size, free parameters); the
    first `retained` levels are shaded as frozen copies of the source net."""
    fig = go.Figure()
    width, gap = 1.0, 0.35
    for i, r in enumerate(rows):
        x0 = i * (width + gap)
        frozen = retained is not None and 1 <= i <= retained
        fill = "#c7d7ee" if frozen else ("#eeeeee" if r["layer"] == "input" else "#fde7c8")
        fig.add_shape(type="rect", x0=x0, x1=x0 + width, y0=0, y1=1, fillcolor=fill,
                      line=dict(color="#555555"))
        params = f"{r['params']:,}<br>params" if r["params"] else ""  # two short lines fit a narrow box
        label = f"<b>{r['layer']}</b><br>{r['maps']}@{r['size']}<br>{params}"
        if frozen:
            label += "<br><i>frozen</i>"
        fig.add_annotation(x=x0 + width / 2, y=0.5, text=label, showarrow=False, font=dict(size=11))
        if i:
            fig.add_annotation(x=x0, y=0.5, ax=x0 - gap, ay=0.5, xref="x", yref="y", axref="x", ayref="y",
                               text="", showarrow=True, arrowhead=2, arrowwidth=1.5)
    total = sum(r["params"] for r in rows)
    fig.update_xaxes(visible=False, range=[-0.1, len(rows) * (width + gap)])
    fig.update_yaxes(visible=False, range=[-0.1, 1.1])
    fig.update_layout(title=f"LeNet-5 as in the paper's Figure 1 ({total:,} free parameters)",
                      height=220, template="plotly_white", margin=dict(l=10, r=10, t=50, b=10),
                      showlegend=False)
    return fig


def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float32)


def _grid(maps: np.ndarray, title: str, cols: int, names: list[str], colorscale: str, symmetric: bool) -> go.Figure:
    m = len(maps)
    cols = max(1, min(cols, m))
    rows = -(-m // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.02,
                        vertical_spacing=0.06 if rows > 1 else 0.0)
    lim = float(np.abs(maps).max()) or 1.0
    lo, hi = (-lim, lim) if symmetric else (float(maps.min()), float(maps.max()) or 1.0)
    for i, a in enumerate(maps):
        fig.add_trace(go.Heatmap(z=a[::-1], zmin=lo, zmax=hi, colorscale=colorscale, showscale=(i == 0),
                                 hovertemplate="%{z:.3f}<extra>" + names[i] + "</extra>"),
                      i // cols + 1, i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for i in range(rows * cols):  # every map square: each y axis to its own x axis, not all to the first
        axis = "" if i == 0 else str(i + 1)
        fig.layout["yaxis" + axis].update(scaleanchor="x" + axis, scaleratio=1)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=max(180, 110 * rows + 70), template="plotly_white",
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def feature_maps(tensor, title: str = "feature maps", cols: int = 8) -> go.Figure:
    """A grid of heatmaps for (M, H, W) activations (one per map)."""
    maps = _to_numpy(tensor)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"feature_maps needs an (M, H, W) array, got shape {maps.shape}")
    names = [f"map {i}" for i in range(len(maps))] if len(maps) > 1 else [""]  # one grid of values: no "map 0"
    return _grid(maps, title, cols, names, "Viridis", symmetric=False)


def kernels(tensor, title: str = "kernels", cols: int = 10) -> go.Figure:
    """A grid of convolution kernels, (M, h, w) or (out, in, h, w), diverging colours around 0."""
    k = _to_numpy(tensor)
    if k.ndim == 4:
        names = [f"{o}<-{i}" for o in range(k.shape[0]) for i in range(k.shape[1])]
        k = k.reshape(-1, *k.shape[2:])
    elif k.ndim == 3:
        names = [f"k{i}" for i in range(len(k))]
    else:
        raise ValueError(f"kernels needs an (M, h, w) or (out, in, h, w) array, got shape {k.shape}")
    return _grid(k, title, cols, names, "RdBu", symmetric=True)
