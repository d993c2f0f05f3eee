"""Teach: name new characters, draw a few samples of each, train a transferred net on them, test it."""
import streamlit as st

import ui
from lenet.config import LEVELS
from lenet.data import DataError
from lenet.drawing.canvas import BlankImage, canvas_to_image
from lenet.drawing.store import SampleStore, clean_name
from lenet.core.transfer import trainable_fraction

st.title("Teach new characters")
st.caption("Invent characters (a Greek letter, a smiley, anything), draw about five of each, "
           "and watch a net that keeps the source net's lower levels learn them.")
source = ui.require_source()
store = SampleStore(ui.session_dir("teach"))


def add_sample(char: str, image) -> None:
    """on_click: runs before the rerun, so the cleared canvas and the gallery show at once."""
    if image is None:
        st.session_state["teach-flash"] = ("error", "Draw the character on the canvas first.")
        return
    store.add(char, image)
    ui.clear_canvas("teach-canvas")
    st.session_state["teach-flash"] = ("success", f"Added a sample of {char} ({store.count(char)} now).")


# The message always has its slot: an element that comes and goes above the canvas would
# shift it, and the browser would remount the canvas and drop the stroke being drawn. It stays
# until the next drawing (the reruns that clearing the canvas causes must not wipe it at once).
flash = st.empty()
kind, message = st.session_state.get("teach-flash", (None, None))
if kind:
    getattr(flash, kind)(message)

st.subheader("1. Name the characters")
named = st.session_state.setdefault("teach-named", [])
c1, c2 = st.columns([3, 1])
new = c1.text_input("A new character (1-3 symbols, e.g. α or ☺)", key="teach-new", max_chars=3)
if c2.button("Add character"):
    try:
        name = clean_name(new)
    except DataError as e:
        st.error(str(e))
    else:
        if name in source.classes:
            st.error(f"{name!r} is one of the source net's characters; teach something new.")
        elif name in named or name in store.characters():
            st.error(f"{name!r} is already on the list.")
        else:
            named.append(name)
chars = sorted(set(store.characters()) | set(named))
if not chars:
    st.info("Add a character to start.")
    st.stop()

st.subheader("2. Draw samples")
current = st.radio("Drawing samples of", chars, horizontal=True, key="teach-char")
left, right = st.columns([1, 2])
with left:
    rgba = ui.canvas("teach-canvas")
    st.caption(ui.CLEAR_HINT)
    try:
        image = canvas_to_image(rgba) if rgba is not None else None
    except BlankImage:
        image = None
    if image is not None:
        ui.show_image28(image, "to be added (28x28)", width=84)
        if st.session_state.pop("teach-flash", None):
            flash.empty()  # a new drawing: the last message has done its job
    st.button(f"Add this drawing to {current}", type="primary", on_click=add_sample, args=(current, image))
with right:
    for char in chars:
        samples = store.samples(char)
        st.markdown(f"**{char}** — {len(samples)} sample(s)")
        cols = st.columns(8)
        for i, (sid, img) in enumerate(samples):
            with cols[i % 8]:
                ui.show_image28(img, "", width=56)
                if st.button("✕", key=f"del-{sid}", help="delete this sample"):
                    store.delete(char, sid)
                    st.rerun()
    for problem in store.problems:
        st.warning(f"Skipped an unreadable sample: {problem}")

with st.expander("Export or import samples (zip)"):
    st.download_button("Export all samples", store.export_zip(), "drawn-samples.zip", mime="application/zip")
    up = st.file_uploader("Import a zip exported here", type=["zip"], key="teach-zip")
    if up is not None and st.button("Import"):
        try:
            added = store.import_zip(up.getvalue())
        except DataError as e:
            st.error(str(e))
        else:
            st.success("Imported " + ", ".join(f"{n} of {c}" for c, n in added.items()))

st.subheader("3. Train")
n = st.slider("Retained levels n", 0, len(LEVELS), 4, key="teach-n")
st.caption(f"Frozen: {', '.join(l.upper() for l in LEVELS[:n]) or 'none'}; "
           f"{trainable_fraction(n):.1%} of the free parameters learn.")
epochs = st.number_input("Epochs", 1, 1000, 60, key="teach-epochs")
if st.button("Train on my drawings", type="primary"):
    drawn = store.to_charset()
    split = ui.check_data(ui.teach_split, drawn)
    if split is not None:
        # A handful of drawings is learned (100%) within an epoch or two; training on to the
        # epoch cap pulls the outputs onto their codes, so fresh drawings are read reliably.
        recipe = ui.transfer_recipe(int(epochs), 0).replace(target_train_acc=1.01)
        ui.check_data(ui.start_transfer, source, split, n, recipe,
                      f"teach {' '.join(split.classes)} n={n}", kind="teach", k=len(split.train))

jobs = ui.session_jobs("teach")
if jobs:
    job, meta = jobs[-1]
    with st.container(border=True):
        st.markdown(f"**#{job.id} {meta['label']}**")
        ui.job_panel(job, "teach")

taught = ui.finished_nets("teach")
if taught:
    st.subheader("4. Test it: draw one of your characters")
    label, net = taught[-1]
    st.caption(f"Using {label}: knows {' '.join(net.classes)}")
    tl, tr = st.columns([1, 1])
    with tl:
        test = ui.canvas("teach-test")
    with tr:
        ui.prediction_panel(net, test, "Draw a character to test the taught net.")
