"""Lesson: the paper in six steps for a class (predict, run, look, explain); every figure from the shipped
source net and results, every answer computed from them; nothing trains unless the class starts it."""
import numpy as np
import streamlit as st

import ui
from lenet.config import LEVELS
from lenet.core.model import architecture
from lenet.data import to_net_input
from lenet.report import lesson
from lenet.report.figures import accuracy_vs_levels, architecture_figure, feature_maps, kernels
from ui import lesson as steps

st.title("Lesson: knowledge transfer in six steps")
st.caption("For a class: each step shows something, asks a question to guess before looking, and gives the answer "
           "from the shipped results. Nothing trains unless you press a button.")
source = ui.require_source()
ds = ui.require_dataset()
grid = steps.shipped_grid()

steps.step(1, "What the source net knows",
           f"A LeNet-5, the **source net**, learned {len(source.classes)} handwritten characters. Here is one "
           f"sample of each, from the active data ({ui.active_data()[0]}):")
gallery = st.container(horizontal=True)
for char in [c for c in source.classes if c in ds.classes]:
    with gallery.container(width=60, gap="small"):
        ui.show_image28(ds.images[np.flatnonzero(ds.labels == ds.classes.index(char))[0]], char, width=56)
steps.ask("How often is it right on handwriting of these characters it never saw?",
          lesson.source_answer(source.meta, source.classes))

steps.step(2, "What freezing n levels means",
           "A new net copies the source net's bottom **n retained levels** (C1, S2, C3, S4, C5) and freezes them; "
           "only the levels above learn the **new** characters. Move n and watch which boxes are frozen.")
n = st.slider("Retained levels n", 0, len(LEVELS), 4, key="lesson-n",
              help="0: a fresh net, no transfer; 5: C1 to C5 frozen, only F6 learns.")
st.plotly_chart(architecture_figure(architecture(source.model), retained=n), key="lesson-arch")
steps.ask(f"With n = {n}, how much of the net can still learn?", lesson.freezing_answer(n))

if grid is None:
    st.warning("The shipped results (assets/results-emnist) are missing from this copy: steps 3 and 4 need them.")
else:
    rows, margins = grid
    quick = [r for r in rows if r["k"] in lesson.QUICK_K]
    splits, runs = rows[0]["seeds"], rows[0]["runs"]
    few, many = lesson.QUICK_K
    steps.step(3, f"A quick grid: {few} sample per class, then {many}",
               f"Each new net learns {len(source.classes)} new characters from **k samples per class** and is tested "
               f"on others. The shipped results: {splits} class splits of {runs // splits} trials each, on EMNIST.")
    steps.ask(f"Predict first: with k = {few}, does keeping more levels help? And with k = {many}?",
              lesson.quick_grid_answer(rows))
    st.plotly_chart(accuracy_vs_levels(quick), key="lesson-quick")
    steps.quick_grid(source, ds, quick)

    steps.step(4, "The paper's figure",
               f"Figure 2: every k. Error bars are 95% intervals over the {splits} class splits.")
    st.plotly_chart(accuracy_vs_levels(rows), key="lesson-fig2")
    steps.ask("Where does transfer help most, and where does keeping every level stop paying?",
              lesson.margins_answer(margins))

steps.step(5, "What the levels see",
           "The source net's first levels on one character: C1's six kernels, then the maps they make.")
char = st.selectbox("Character", [c for c in source.classes if c in ds.classes] or ds.classes, key="lesson-char",
                    help="One of the source net's characters, its first sample in the active data.")
image = ds.images[np.flatnonzero(ds.labels == ds.classes.index(char))[0]]
feats = source.model.features(to_net_input(image[None]))
st.plotly_chart(kernels(source.model.c1.weight[:, 0], "C1 kernels (6 of 5x5)", cols=6), key="lesson-kernels")
st.plotly_chart(feature_maps(feats["c1"][0], "C1: 6 maps of 28x28", cols=6), key="lesson-c1")
st.plotly_chart(feature_maps(feats["c3"][0], "C3: 16 maps of 10x10", cols=8), key="lesson-c3")
steps.ask("What does each C1 map light up on? Is any of it about this one character?", lesson.MAPS_ANSWER)

steps.step(6, "One drawing", "Draw a character for the source net to read.")
left, right = ui.canvas_row()
with left:
    rgba = ui.canvas("lesson-canvas")
with right:
    ui.prediction_panel(source, rgba, "Draw one of its characters; then one it does not know.")
steps.ask("Draw a character it never learned. What will it say?", lesson.DRAWING_ANSWER)
