"""The canvas, small images, and classifying a drawing."""
from __future__ import annotations


import numpy as np
import streamlit as st

from lenet.data import DataError
from lenet.net import Net
from lenet.preprocess import BlankImage, canvas_to_image

from .nets import require_source
from .training import all_nets


# --- drawing ----------------------------------------------------------------------------------

CANVAS_PX = 280


def canvas(key: str):
    """A freehand canvas; returns its RGBA pixels, or None before anything is drawn.

    st_canvas is imported here, not at module level: it only imports inside a running app.
    """
    from streamlit_drawable_canvas import st_canvas
    result = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#ffffff",
                       height=CANVAS_PX, width=CANVAS_PX, drawing_mode="freedraw",
                       update_streamlit=True, return_image_data=True, key=key)
    objects = (result.json_data or {}).get("objects") or []
    return result.image_data if objects else None


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


def clear_canvas(counter_key: str) -> None:
    """on_click for a Clear button: a new canvas key gives an empty canvas."""
    st.session_state[counter_key] = st.session_state.get(counter_key, 0) + 1


def canvas_key(name: str) -> str:
    return f"{name}-{st.session_state.get(name + '-n', 0)}"


def classify(net: Net, rgba: np.ndarray, top: int = 5) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Canvas pixels -> (the 28x28 image the net gets, its top nearest characters with distances).
    Raises lenet.preprocess.BlankImage when nothing is drawn."""
    image = canvas_to_image(rgba)
    return image, net.rank(image, min(top, len(net.classes)))


def prediction_panel(net: Net, rgba: np.ndarray | None, prompt: str) -> np.ndarray | None:
    """The Prediction metric and the top 5 for a canvas; the 28x28 image, or None (no ink yet)."""
    if rgba is None:
        st.info(prompt)
        return None
    try:
        image, ranking = classify(net, rgba)
    except BlankImage as e:
        st.info(f"{e}: the canvas has no ink yet.")
        return None
    st.metric("Prediction", ranking[0][0])
    st.dataframe([{"character": c, "distance to its code": round(d, 3)} for c, d in ranking], hide_index=True)
    return image


def net_picker(key: str, label: str = "Net") -> tuple[str, Net]:
    """A selectbox over the session's nets (source first); stops the page until one exists."""
    nets = all_nets()
    if not nets:
        require_source()
    names = [n for n, _ in nets]
    choice = st.selectbox(label, names, key=key)
    return choice, dict(nets)[choice]
