"""The canvas, small images, and classifying a drawing."""
from __future__ import annotations

import re

import numpy as np
import streamlit as st

from lenet.config import NOT_SURE
from lenet.data import DataError
from lenet.core.net import Net
from lenet.drawing.canvas import BlankImage, drawing_to_image

from .nets import require_source
from .training import all_nets
from .classroom import class_nets


# --- drawing ----------------------------------------------------------------------------------

CANVAS_PX = 280
COLUMN_PX = CANVAS_PX + 20  # a column that holds the canvas whole at any page width


def canvas_row(canvas_right: bool = False):
    """(canvas column, other column): a fixed-width column for a canvas and one that takes the rest of
    the row (they stack on a narrow page); st.columns would squeeze the canvas and cut its edge off."""
    row = st.container(horizontal=True, gap="large")
    if canvas_right:
        other = row.container()
        return row.container(width=COLUMN_PX), other
    return row.container(width=COLUMN_PX), row.container()
PEN_PX = (4, 40, 18)  # the pen-width slider: min, max, default (px on the canvas)
CLEAR_HINT = "Draw with the mouse, a finger or a pen; Clear empties the canvas."


def canvas(name: str, clear: bool = True):
    """A freehand canvas under a pen-width slider and a Clear button; returns its RGBA pixels, or None
    before anything is drawn.

    The canvas keeps the key `name` for the whole session: a new key would remount it and swallow
    strokes drawn meanwhile. Clear (and its toolbar's bin, shown only on hover) empties it;
    `clear_canvas(name)` does so from Python by sending a new (empty) initial drawing. st_canvas is
    imported here, not at module level: it only imports inside a running app.
    """
    from streamlit_drawable_canvas import st_canvas
    lo, hi, default = PEN_PX
    pen = st.slider("Pen width (px)", lo, hi, default, key=f"{name}-pen",
                    help="Any pen works: the drawing is redrawn with EMNIST's stroke width before the net reads it.")
    cleared = st.session_state.get(f"{name}-cleared", 0)
    result = st_canvas(stroke_width=pen, stroke_color="#000000", background_color="#ffffff",
                       height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw",
                       initial_drawing={"objects": [], "cleared": cleared},
                       update_streamlit=True, return_image_data=True, key=name)
    if clear:
        clear_button(name)
    objects = (result.json_data or {}).get("objects") or []
    # Until the browser has applied a clear, the canvas still reports the drawing it replaces.
    seen = repr(objects)
    st.session_state[f"{name}-seen"] = seen
    if not objects or seen == st.session_state.get(f"{name}-stale"):
        st.session_state[f"{name}-objects"] = None
        return None
    st.session_state[f"{name}-objects"] = objects  # the pens' paths: read_drawing reads the trajectory
    return result.image_data


def canvas_objects(name: str) -> list | None:
    """The canvas `name`'s last drawing as fabric.js objects (its pens' paths), or None."""
    return st.session_state.get(f"{name}-objects")


def read_drawing(rgba: np.ndarray, objects: list | None = None) -> np.ndarray:
    """The 28x28 image of a canvas drawing: from its pens' trajectory when given (lenet.drawing.canvas)."""
    return drawing_to_image(rgba, objects)


def clear_button(name: str) -> None:
    """The canvas `name`'s Clear button (ui.canvas draws it under the canvas unless told not to)."""
    st.button("Clear", key=f"{name}-clear", on_click=clear_canvas, args=(name,), icon=":material/delete:",
              help="Empty the canvas to draw again.")


def show_image28(image: np.ndarray, caption: str, width: int = 140) -> None:
    """A small grey image scaled up without smoothing, so the pixels stay visible."""
    from PIL import Image
    a = np.asarray(image, dtype=np.float32)
    a = (a - a.min()) / (float(a.max() - a.min()) or 1.0) * 255
    big = Image.fromarray(a.astype(np.uint8)).resize((width, width), Image.NEAREST)
    st.image(big, caption=caption, width=width)


def check_data(fn, *args, **kwargs):
    """Call fn; a DataError/ValueError becomes an st.error line and None."""
    try:
        return fn(*args, **kwargs)
    except (DataError, ValueError) as e:
        st.error(str(e))
        return None


def clear_canvas(name: str) -> None:
    """Empty the canvas `name` from Python (e.g. after its drawing is saved), without remounting it."""
    st.session_state[f"{name}-cleared"] = st.session_state.get(f"{name}-cleared", 0) + 1
    st.session_state[f"{name}-stale"] = st.session_state.get(f"{name}-seen")


def classify(net: Net, rgba: np.ndarray, top: int = 5, objects: list | None = None
             ) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Canvas pixels (and its pens' paths) -> (the 28x28 image the net gets, its top nearest characters
    with distances). Raises lenet.drawing.canvas.BlankImage when nothing is drawn."""
    image = read_drawing(rgba, objects)
    return image, net.rank(image, min(top, len(net.classes)))


def prediction_panel(net: Net, rgba: np.ndarray | None, prompt: str, objects: list | None = None
                     ) -> np.ndarray | None:
    """The Prediction metric and the top 3 with calibrated confidences (or, for a net without a temperature,
    the top 5 by code distance) for a canvas; the 28x28 image, or None (no ink yet)."""
    if rgba is None:
        st.info(prompt)
        return None
    try:
        image, ranking = classify(net, rgba, objects=objects)
    except BlankImage as e:
        st.info(f"{e}: the canvas has no ink yet.")
        return None
    if net.temperature is None:  # a net without held-out characters to calibrate on (Teach, Transfer)
        st.metric("Prediction", ranking[0][0], help="The character whose target code is nearest to the net's output.")
        table([{"character": c, "distance to its code": f"{d:.2f}"} for c, d in ranking])
        st.caption("Each character has a 20-number target code; the net answers with 20 numbers, and the nearest "
                   "code wins. A smaller distance is a closer match (0 would be exact). This net is not "
                   "calibrated, so it gives no confidences.")
        return image
    top = net.read(image, min(3, len(net.classes)))
    sure = top[0][1] >= NOT_SURE
    st.metric("Prediction", top[0][0] if sure else "not sure",
              help=f"The most likely character, or \"not sure\" when its confidence is below {NOT_SURE:.0%}.")
    table([{"character": c, "confidence": f"{p:.0%}"} for c, p in top])
    cal = net.meta.get("calibration") or {}
    st.caption(("" if sure else f"Its best guess, {top[0][0]}, is below {NOT_SURE:.0%}. ")
               + "Confidences are calibrated: a softmax of the distances from the net's output to each "
               f"character's target code, at a temperature fitted on held-out characters (calibration error "
               f"{cal.get('ece', float('nan')):.1%} there). Of answers given at 70%, about 70% are right.")
    return image


def _plain(text: str) -> str:
    """Text that st.table (which reads markdown) shows as typed: "+" alone is no bullet, "a_b_" no italics."""
    text = re.sub(r"([\\`*_\[\]#+<>|~])", r"\\\1", text)
    return re.sub(r"^(\d+)\.(\s|$)", r"\1\\.\2", re.sub(r"^-(\s|$)", r"\\-\1", text))  # "- a", "1. a": lists


def table(rows: list[dict], percent: tuple[str, ...] = ()) -> None:
    """A small table whose cells wrap (st.table), so no text is cut off; `percent` columns as 12.3%."""
    def cell(key, v):
        if v is None or (isinstance(v, float) and v != v):
            return "–"
        if key in percent and isinstance(v, (int, float)):
            return f"{v:.1%}"
        if isinstance(v, float):
            return f"{v:,.3g}"
        return _plain(str(v))
    if rows:
        import pandas as pd
        st.table(pd.DataFrame([{k: cell(k, v) for k, v in r.items()} for r in rows]), hide_index=True)


def net_picker(key: str, label: str = "Net") -> tuple[str, Net]:
    """A selectbox over the session's nets (source first); stops the page until one exists."""
    nets = all_nets() + class_nets()
    if not nets:
        require_source()
    names = [n for n, _ in nets]
    choice = st.selectbox(label, names, key=key, help="The shipped source net, or a net you trained on Transfer "
                                                      "or Teach in this session.")
    return choice, dict(nets)[choice]
