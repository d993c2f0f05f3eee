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
    st.error(f"The active dataset cannot be loaded: {e}")
    st.stop()

sources = ["a test character"] + (["my last drawing"] if s.last_drawing is not None else [])
where = st.radio("Input", sources, horizontal=True, key="maps-input")
if where == "a test character":
    c1, c2 = st.columns(2)
    default = net.classes[0] if net.classes[0] in ds.classes else ds.classes[0]
    char = c1.selectbox("Character", ds.classes, index=ds.classes.index(default), key="maps-char")
    rows = np.flatnonzero(ds.labels == ds.classes.index(char))
    i = c2.number_input(f"Sample (of {len(rows)})", 0, max(0, len(rows) - 1), 0, key="maps-i")
    image = ds.images[rows[int(i)]]
else:
    image = s.last_drawing
more = st.checkbox("Also show S2 and S4", key="maps-more")

ui.show_image28(net_view(image), "the input (32x32, as the net sees it)", width=160)
source, source_label, _ = ui.active_source()
compare = net.retained > 0 and source is not None and source is not net
nets = [(name, net)] + ([(f"source net ({source_label})", source)] if compare else [])
feats = [m.model.features(to_net_input(image[None])) for _, m in nets]
if compare:
    same = [l.upper() for l in LEVELS if bool((feats[0][l] == feats[1][l]).all())]
    st.info(f"This net retains n = {net.retained} level(s) from the source net. Identical maps at: "
            f"{', '.join(same) or 'no level'} (frozen copies compute exactly what the source computes).")
levels = ["c1", "s2", "c3", "s4"] if more else ["c1", "c3"]
cols = st.columns(len(nets))
for col, (label, m), f in zip(cols, nets, feats):
    with col:
        st.markdown(f"**{label}**")
        st.plotly_chart(kernels(m.model.c1.weight[:, 0], "C1 kernels (6 of 5x5)", cols=6),
                        key=f"k-{label}")
        for level in levels:
            maps = f[level][0]  # (M, H, W)
            st.plotly_chart(feature_maps(maps, f"{level.upper()}: {maps.shape[0]} maps of "
                                               f"{maps.shape[1]}x{maps.shape[2]}", cols=8 if len(maps) > 6 else 6),
                            key=f"{level}-{label}")
