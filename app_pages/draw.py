"""Draw: a freehand character, classified by the chosen net as soon as the stroke ends."""
import streamlit as st

import ui
from lenet.drawing.canvas import net_view

st.title("Draw a character")
s = ui.state()
name, net = ui.net_picker("draw-net", "Net that reads your drawing")
st.caption(f"It knows {len(net.classes)} characters: **{' '.join(net.classes)}**")

left, right = ui.canvas_row()
with left:
    rgba = ui.canvas("draw-canvas")
    st.caption(ui.CLEAR_HINT)
with right:
    image = ui.prediction_panel(net, rgba, "Draw a character on the canvas; the prediction appears when you lift "
                                           "the pen.", ui.canvas_objects("draw-canvas"))
    if image is not None:
        s.last_drawing = image
        ui.show_image28(net_view(image), "what the net sees (32x32)")
        st.caption("Your strokes, redrawn along the pen's path with the stroke width of EMNIST's handwriting "
                   "whatever the pen and the size of the drawing (so a thick pen's loops stay open), framed "
                   "like EMNIST. Feature maps shows what each level computes for it.")
