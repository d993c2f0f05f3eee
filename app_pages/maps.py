"""Feature maps: what each level of a net computes for one character; a transferred net beside its source."""
import numpy as np
import streamlit as st

import ui
from lenet.config import LEVELS
from lenet.data import DataError, to_net_input
from lenet.report.figures import feature_maps, kernels
from lenet.drawing.canvas import net_view

st.title("Feature maps")
s = ui.state()
name, net = ui.net_picker("maps-net")
try:
    ds = ui.current_dataset()
except DataError as e:
    st.error(f"The active dataset cannot be loaded: {ui.hide_paths(str(e))}")
    st.stop()

c1, c2, c3 = st.columns([2, 2, 1])
where = "a test character"
if s.last_drawing is not None:
    where = c1.radio("Input", ["a test character", "my last drawing"], horizontal=True, key="maps-input",
                     help="A character from the test set, or the last drawing you made on Draw.")
if where == "a test character":
    default = net.classes[0] if net.classes[0] in ds.classes else ds.classes[0]
    char = c1.selectbox("Character", ds.classes, index=ds.classes.index(default), key="maps-char",
                        help="Any character of the active dataset, known to this net or not.")
    rows = np.flatnonzero(ds.labels == ds.classes.index(char))
    i = c2.number_input(f"Sample (of {len(rows)})", 0, max(0, len(rows) - 1), 0, key="maps-i",
                        help="Which handwritten sample of that character.")
    image = ds.images[rows[int(i)]]
    if s.last_drawing is None:
        c1.caption("Draw on the Draw page to look at your own drawing here.")
else:
    image = s.last_drawing
more = c2.checkbox("Also show S2 and S4", key="maps-more",
                   help="The subsampling levels: each halves its input's maps (2x2 averages).")

source, source_label, _ = ui.active_source()
compare = net.retained > 0 and source is not None and source is not net
nets = [(name, net)] + ([(f"source net ({source_label})", source)] if compare else [])
feats = [m.model.features(to_net_input(image[None])) for _, m in nets]
with c3:
    ui.show_image28(net_view(image), "the input (32x32)", width=112)
for col, (label, m) in zip(st.columns(len(nets)), nets):
    guess, distance = m.rank(image, 1)[0]
    col.metric(f"Prediction: {label.split(' (')[0]}", guess,
               help=f"The character whose target code is nearest to the net's 20 outputs (distance {distance:.2f}).")

levels = ["c1", "s2", "c3", "s4"] if more else ["c1", "c3"]
levels += ["c5", "f6"]  # where a transferred net and its source part: the trained levels


def level_figure(f: dict, level: str, side_by_side: bool):
    a = f[level][0].detach()
    if level == "c5":  # (120, 1, 1): one value per map, shown as a 10x12 grid
        return feature_maps(a.reshape(1, 10, 12), "C5: its 120 values (10x12)", cols=1)
    if level == "f6":  # (20,): the outputs read against the target codes
        return feature_maps(a.reshape(1, 4, -1), f"F6: its {a.numel()} outputs", cols=1)
    return feature_maps(a, f"{level.upper()}: {a.shape[0]} maps of {a.shape[1]}x{a.shape[2]}",
                        cols=(4 if side_by_side else 8) if len(a) > 6 else (3 if side_by_side else 6))


same = {l for l in LEVELS if compare and bool((feats[0][l] == feats[1][l]).all())}
if compare:
    st.info(f"This net retains n = {net.retained} level(s) from the source net. Identical maps at: "
            f"{', '.join(l.upper() for l in LEVELS if l in same) or 'no level'} (frozen copies compute exactly "
            f"what the source computes): shown once. The levels above are trained anew and differ: side by side.")
# A level both nets compute alike is drawn once, full width; a level where they differ, side by side.
if not compare or "c1" in same:
    st.plotly_chart(kernels(net.model.c1.weight[:, 0], "C1 kernels (6 of 5x5)", cols=6), key="k-c1")
for level in levels:
    if level in same or not compare:
        st.plotly_chart(level_figure(feats[0], level, side_by_side=False), key=f"{level}-0")
        continue
    for col, (label, _), f, j in zip(st.columns(len(nets)), nets, feats, range(len(nets))):
        with col:
            st.markdown(f"**{label}**")
            st.plotly_chart(level_figure(f, level, side_by_side=True), key=f"{level}-{j}")
