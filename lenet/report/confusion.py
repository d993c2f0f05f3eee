"""What a net misreads: the confusion matrix, per-class accuracy, and which samples were misread which way.

`confusion(truth, read, classes)` is a pure function of two label lists; `of_net(net, data)` reads a
labelled set with a net first. The figure is a grid of square markers rather than a heatmap, so that a
click on any cell (a diagonal one included) selects exactly one point the app can look up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from lenet.core.net import Net
from lenet.data import CharacterSet


@dataclass(frozen=True)
class Confusion:
    classes: list[str]
    truth: np.ndarray    # (N,) index into classes: what sample i is
    read: np.ndarray     # (N,) index into classes: what the net read it as
    matrix: np.ndarray   # (C, C) counts: row = the true character, column = what it was read as

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.matrix) / max(1, self.matrix.sum()))

    def per_class(self) -> list[dict]:
        """[{character, samples, correct, accuracy}] in class order (accuracy NaN without samples)."""
        totals, right = self.matrix.sum(1), np.diag(self.matrix)
        return [{"character": c, "samples": int(t), "correct": int(r), "accuracy": r / t if t else float("nan")}
                for c, t, r in zip(self.classes, totals, right)]

    def samples(self, true: str, read: str) -> np.ndarray:
        """Indices of the samples of `true` that were read as `read` (correct ones where they are equal)."""
        i, j = self.classes.index(true), self.classes.index(read)
        return np.flatnonzero((self.truth == i) & (self.read == j))

    def misreadings(self) -> list[tuple[str, str, int]]:
        """(true, read as, count) of every off-diagonal cell with a sample, the most frequent first."""
        cells = [(self.classes[i], self.classes[j], int(self.matrix[i, j]))
                 for i, j in zip(*np.nonzero(self.matrix)) if i != j]
        return sorted(cells, key=lambda c: (-c[2], self.classes.index(c[0]), self.classes.index(c[1])))


def confusion(truth, read, classes: list[str]) -> Confusion:
    """The confusion of two equally long lists of characters (or indices into classes)."""
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise ValueError("classes lists a character twice")

    def as_index(labels, name):
        out = np.array([index[l] if isinstance(l, str) else int(l) for l in labels], dtype=np.int64)
        if out.size and (out.min() < 0 or out.max() >= len(classes)):
            raise ValueError(f"{name} holds a label outside the {len(classes)} classes")
        return out
    try:
        t, r = as_index(truth, "truth"), as_index(read, "read")
    except KeyError as e:
        raise ValueError(f"{e.args[0]!r} is not one of the classes") from None
    if len(t) != len(r):
        raise ValueError(f"truth has {len(t)} labels, read has {len(r)}")
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    np.add.at(matrix, (t, r), 1)
    return Confusion(list(classes), t, r, matrix)


def of_net(net: Net, data: CharacterSet, batch: int = 2048) -> Confusion:
    """The net's reading of every sample of `data`, whose characters must all be among the net's."""
    unknown = sorted(set(data.classes[l] for l in np.unique(data.labels)) - set(net.classes))
    if unknown:
        raise ValueError(f"the net does not know {' '.join(unknown)}")
    truth = [data.classes[l] for l in data.labels.tolist()]
    read = [c for i in range(0, len(data), batch) for c in net.predict(data.images[i:i + batch])]
    return confusion(truth, read, net.classes)


def figure(c: Confusion, title: str = "Confusion matrix") -> go.Figure:
    """Rows: the true character; columns: what the net read. Colour: the share of the row, so that a
    class with few samples shows as clearly as one with many; the count is written in each cell."""
    n = len(c.classes)
    totals = np.maximum(c.matrix.sum(1, keepdims=True), 1)
    share = c.matrix / totals
    cells = [(i, j) for i in range(n) for j in range(n)]
    side = 520 if n > 8 else 360
    marker = max(8, int((side - 120) / n) - 2)
    fig = go.Figure(go.Scatter(
        x=[c.classes[j] for _, j in cells], y=[c.classes[i] for i, _ in cells], mode="markers+text",
        marker=dict(symbol="square", size=marker, color=[share[i, j] for i, j in cells], cmin=0, cmax=1,
                    colorscale="Blues", showscale=True, colorbar=dict(title="share", tickformat=".0%"),
                    line=dict(color="#dddddd", width=1)),
        text=[str(c.matrix[i, j]) if c.matrix[i, j] else "" for i, j in cells],
        textfont=dict(size=9 if n > 12 else 12,
                      color=["white" if share[i, j] > 0.55 else "#333333" for i, j in cells]),
        customdata=[[c.classes[i], c.classes[j], int(c.matrix[i, j]), share[i, j]] for i, j in cells],
        hovertemplate="%{customdata[0]} read as %{customdata[1]}: %{customdata[2]} "
                      "(%{customdata[3]:.0%} of its samples)<extra>click to see them</extra>",
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),  # a click dims nothing
        showlegend=False))
    axis = dict(type="category", categoryorder="array", tickmode="array", showgrid=False, zeroline=False)
    fig.update_xaxes(title_text="read as", categoryarray=c.classes, **axis)
    fig.update_yaxes(title_text="true character", categoryarray=c.classes[::-1], scaleanchor="x", **axis)
    fig.update_layout(title=f"{title} ({c.accuracy:.1%} right; click a cell)", height=side + 60, width=side + 120,
                      template="plotly_white", margin=dict(l=70, r=20, t=60, b=50), dragmode=False,
                      clickmode="event+select")
    return fig


def per_class_figure(c: Confusion, title: str = "Accuracy per character") -> go.Figure:
    rows = c.per_class()
    fig = go.Figure(go.Bar(
        x=[r["character"] for r in rows], y=[r["accuracy"] for r in rows], marker_color="#1f77b4",
        customdata=[[r["correct"], r["samples"]] for r in rows],
        hovertemplate="%{x}: %{y:.0%} (%{customdata[0]} of %{customdata[1]})<extra></extra>"))
    fig.add_hline(y=c.accuracy, line=dict(color="#888888", dash="dot"),
                  annotation_text=f"all: {c.accuracy:.1%}", annotation_position="top left")
    fig.update_xaxes(type="category", title_text="character")
    fig.update_yaxes(tickformat=".0%", range=[0, 1.05], title_text="test accuracy")
    fig.update_layout(title=title, height=300, template="plotly_white", margin=dict(l=60, r=20, t=50, b=40))
    return fig
