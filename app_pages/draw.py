"""Draw: a freehand character, classified by the chosen net as soon as the stroke ends."""
import streamlit as st

import ui
from lenet.preprocess import net_view

st.title("Draw a character")
s = ui.state()
name, net = ui.net_picker("draw-net", "Net that reads your drawing")
st.caption(f"It knows {len(net.classes)} characters: **{' '.join(net.classes)}**")

left, right = st.columns([1, 1])
with left:
    st.button("Clear", on_click=ui.clear_canvas, args=("draw-canvas-n",))
    rgba = ui.canvas(ui.canvas_key("draw-canvas"))
with right:
    image = ui.prediction_panel(net, rgba, "Draw a character on the canvas; the prediction appears when you lift "
                                           "the pen.")
    if image is not None:
        s.last_drawing = image
        ui.show_image28(net_view(image), "what the net sees (32x32)")
