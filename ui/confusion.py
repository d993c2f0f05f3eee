"""What a net misread, as the pages show it: per-class accuracy, the confusion matrix, and the samples
behind a clicked cell (or one picked from the list of misreadings, which a click fills in)."""
from __future__ import annotations

import streamlit as st

from lenet.core.net import Net
from lenet.data import CharacterSet
from lenet.report import confusion as cm

from .drawing import show_image28

SHOWN = 40  # samples of one cell shown at most


def _label(true: str, read: str, count: int) -> str:
    return f"{true} read as {read} (correct): {count}" if true == read else f"{true} read as {read}: {count}"


def show_confusion(net: Net, data: CharacterSet, key: str, what: str = "test characters") -> cm.Confusion | None:
    """Per-class accuracy and the confusion matrix of `net` on `data`; a click on a cell (or a pick in
    the list under it) shows the samples that were read that way. None (and a note) without samples."""
    if not len(data):
        st.caption(f"No {what} to read: nothing to show.")
        return None
    conf = cm.of_net(net, data)
    cells = [(t, r) for t in conf.classes for r in conf.classes]  # the figure's points, row by row
    counts = {(t, r): int(conf.matrix[i, j]) for i, t in enumerate(conf.classes) for j, r in enumerate(conf.classes)}
    options = [(t, r) for t, r, _ in conf.misreadings()] + [(c, c) for c in conf.classes if counts[c, c]]
    labels = {_label(t, r, counts[t, r]): (t, r) for t, r in options}
    pick_key, chart_key = f"{key}-cell", f"{key}-matrix"
    picked = st.session_state.get(pick_key, "")
    if picked is not None and picked not in labels:  # a new net or new data: the old pick may be gone
        st.session_state[pick_key] = next(iter(labels))  # (None: an empty cell was clicked)

    def clicked() -> None:
        points = st.session_state[chart_key].selection.points
        if points:
            t, r = cells[points[0]["point_index"]]
            st.session_state[pick_key] = _label(t, r, counts[t, r]) if counts[t, r] else None

    st.plotly_chart(cm.per_class_figure(conf, f"Accuracy per character on {len(data):,} {what}"),
                    key=f"{key}-per-class")
    st.plotly_chart(cm.figure(conf), key=chart_key, on_select=clicked, selection_mode="points", width="content")
    pick = st.selectbox("Samples read this way (click a cell of the matrix, or pick here; the most frequent "
                        "misreadings first)", list(labels), key=pick_key, placeholder="an empty cell: no samples",
                        help="The samples behind one cell: its row is what they are, its column what the net read.")
    if pick is None:
        st.caption("That cell is empty: no sample was read that way.")
        return conf
    true, read = labels[pick]
    rows = conf.samples(true, read)
    st.caption(f"{len(rows)} of the {int(conf.matrix[conf.classes.index(true)].sum())} {what} of **{true}** "
               f"were read as **{read}**" + (f"; the first {SHOWN}:" if len(rows) > SHOWN else ":"))
    gallery = st.container(horizontal=True, key=f"{key}-samples")
    for i in rows[:SHOWN]:
        with gallery.container(width=60, gap="small"):
            show_image28(data.images[i], "", width=56)
    return conf
