"""Home: what the paper shows, Figure 1 drawn from the live model, and what is active.

The first page a newcomer sees: its title and text go out before torch is imported (2-4 s on
a fresh server), and the layer table is markdown (st.table would import pandas, ~1 s more).
"""
import streamlit as st

st.title("LeNet Transfer Lab")
st.markdown(
    "Gutstein, Fuentes & Freudenthal, *Knowledge Transfer in Deep Convolutional Neural Nets* (2007): "
    "a LeNet-5 **source net** learns 20 handwritten characters from 400 samples each. Its bottom "
    "**n retained levels** (C1, S2, C3, S4, C5) are copied into a new net and frozen; only the levels "
    "above learn 20 *other* characters from just **k samples per class**. With few samples, keeping "
    "more levels helps a lot: features learned on one set of characters carry over to new ones. "
    "Every output is trained towards a 20-bit random **target code**; the prediction is the "
    "character whose code is nearest.")
st.markdown("**Start here:** try the source net on your own handwriting, train on new characters, or invent "
            "characters and teach them.")
links = st.container(horizontal=True)  # as many a row as fit: no label cut short on a narrow page
links.page_link("app_pages/lesson.py", label="The paper in six steps (a lesson)", icon=":material/cast_for_education:")
links.page_link("app_pages/draw.py", label="Draw a character", icon=":material/draw:")
links.page_link("app_pages/transfer.py", label="Transfer to new characters", icon=":material/swap_horiz:")
links.page_link("app_pages/teach.py", label="Teach your own characters", icon=":material/school:")
links.page_link("app_pages/experiments.py", label="The paper's Figures 2-5", icon=":material/monitoring:")

import ui  # noqa: E402  (after the text, see above)
from lenet.report.figures import architecture_figure  # noqa: E402
from lenet.core.model import LeNet5, architecture  # noqa: E402

net, label, job = ui.active_source()
c1, c2 = st.columns(2)
active, about = ui.active_data()
c1.metric("Dataset", active)
c1.caption(about)
if net is None:
    c2.metric("Source net", "training…")
    st.info("No pretrained source net ships with this copy: a quick one is training in the background.")
    ui.job_panel(job, "bootstrap", stop_button=False)
else:
    c2.metric("Source net", f"{len(net.classes)} characters")
    c2.caption(f"{label}: {' '.join(net.classes)}")
    acc = net.meta.get("train_acc")
    if isinstance(acc, float):
        c2.caption(f"training accuracy {acc:.1%}, trained on {net.meta.get('data', '?')}")

rows = architecture(net.model if net is not None else LeNet5())
st.subheader("The architecture (Figure 1), read from the live model")
st.plotly_chart(architecture_figure(rows), key="arch")
st.markdown("| layer | maps | map size | free parameters |\n| --- | ---: | --- | ---: |\n" +
            "\n".join(f"| {r['layer']} | {r['maps']} | {r['size']} | {r['params']:,} |" for r in rows))
