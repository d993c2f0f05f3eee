"""Teach: name new characters, draw a few samples of each, train a transferred net on them, test it."""
import streamlit as st

import ui
from ui import classroom, roles
from lenet.config import DRAWN_TEACH, LEVELS
from lenet.data import DataError
from lenet.drawing.canvas import BlankImage
from lenet.drawing.store import SampleStore, clean_name
from lenet.core.transfer import trainable_fraction

st.title("Teach new characters")
st.caption("Invent characters (a Greek letter, a smiley, anything), draw about five of each, "
           "and watch a net that keeps the source net's lower levels learn them.")
source = ui.require_source()
classroom.joined_note()
store = SampleStore(ui.session_dir("teach"))
named = st.session_state.setdefault("teach-named", [])


def flash(kind: str, message: str) -> None:
    st.session_state["teach-flash"] = (kind, message)


def add_character() -> None:
    """on_click: a new name joins the list and the box empties for the next one."""
    try:
        name = clean_name(st.session_state.get("teach-new", ""))
    except DataError as e:
        return flash("error", str(e))
    if name in source.classes:
        return flash("error", f"{name!r} is one of the source net's characters; teach something new.")
    if name in named or name in store.characters():
        return flash("error", f"{name!r} is already on the list.")
    named.append(name)
    st.session_state["teach-new"] = ""
    st.session_state["teach-char"] = name  # draw the new character next
    flash("success", f"Added {name}: draw a few samples of it on the canvas.")


def add_sample(char: str, image) -> None:
    """on_click: runs before the rerun, so the cleared canvas and the gallery show at once."""
    if image is None:
        return flash("error", "Draw the character on the canvas first.")
    store.add(char, image)
    ui.clear_canvas("teach-canvas")
    shared = classroom.share_drawing(char, image)
    flash("success", f"Added a sample of {char} ({store.count(char)} now)." + (f" {shared}" if shared else ""))


chars = sorted(set(store.characters()) | set(named))
# The canvas column has nothing above it that comes and goes while drawing: every message and the
# gallery live in the other column, so the canvas never moves under the pen (a canvas that
# moves mid-stroke is remounted by the browser and the drawing is lost or garbled).
drawing, names = ui.canvas_row(canvas_right=True)
with names:
    st.subheader("1. Name the characters")
    row = st.container(horizontal=True, vertical_alignment="bottom")  # the button goes under on a narrow page
    row.text_input("A new character (1-3 symbols, e.g. α or ☺)", key="teach-new", max_chars=3,
                   help="Any letter or symbol the source net does not know; it names a class of your drawings.")
    row.button("Add character", on_click=add_character, help="Put the name on the list; then draw samples of it.")
    ui.omniglot_teach_panel(store, lambda message: flash("success", message))
    kind, message = st.session_state.get("teach-flash", (None, None))
    if kind:
        getattr(st, kind)(message)
    for char in chars:
        samples = store.samples(char)
        st.markdown(f"**{char}** — {len(samples)} sample(s)")
        gallery = st.container(horizontal=True)  # as many a row as fit, whatever the width
        for sid, img in samples:
            with gallery.container(width=60, gap="small"):
                ui.show_image28(img, "", width=56)
                if roles.is_teacher() and st.button("✕", key=f"del-{sid}", help="delete this sample"):
                    store.delete(char, sid)
                    st.rerun()
    for problem in store.problems:
        st.warning(f"Skipped an unreadable sample: {problem}")

with drawing:
    st.subheader("2. Draw samples")
    if not chars:
        st.info("Name a character to start.")
        st.stop()
    current = st.radio("Drawing samples of", chars, horizontal=True, key="teach-char",
                       help="The character the next drawing is a sample of.")
    rgba = ui.canvas("teach-canvas", clear=False)
    try:
        image = ui.read_drawing(rgba, ui.canvas_objects("teach-canvas")) if rgba is not None else None
    except BlankImage:
        image = None
    # the button first: the preview appearing beside it must not move it
    add = st.container(horizontal=True, vertical_alignment="center")
    add.button(f"Add this drawing to {current}", type="primary", on_click=add_sample, args=(current, image),
               help="Save the drawing as a sample (28x28, framed like EMNIST) and clear the canvas.")
    with add:
        ui.clear_button("teach-canvas")
    if image is not None:
        ui.show_image28(image, "to be added (28x28)", width=56)

with st.expander("Export or import samples (zip)"):
    st.download_button("Export all samples", store.export_zip(), "drawn-samples.zip", mime="application/zip",
                       help="A zip of every sample, to import in another session or on another machine.")
    up = st.file_uploader("Import a zip exported here", type=["zip"], key="teach-zip",
                          help="Samples from a zip made by Export; characters already here get more samples.")
    if up is not None and st.button("Import"):
        try:
            added = store.import_zip(up.getvalue())
        except DataError as e:
            st.error(str(e))
        else:
            st.success("Imported " + ", ".join(f"{n} of {c}" for c, n in added.items()))

st.subheader("3. Train")
c1, c2 = st.columns([2, 1])
n = c1.slider("Retained levels n", 0, len(LEVELS), 4, key="teach-n",
              help="How many of the source net's lowest levels are copied and frozen; the levels above learn "
                   "your characters.")
c1.caption(f"Frozen: {', '.join(l.upper() for l in LEVELS[:n]) or 'none'}; "
           f"{trainable_fraction(n):.1%} of the free parameters learn.")
epochs = c2.number_input("Max epochs", 1, 1000, 60, key="teach-epochs",
                         help="An epoch is one pass over your drawings. Training stops earlier once the outputs "
                              "are close to their codes (the status line says why it stopped).")
augment = c2.toggle("Drawn copies", value=True, key="teach-augment",
                    help=f"Train on {DRAWN_TEACH.copies:g} copies of each drawing too, each slightly distorted and "
                         "traced again at another size: the net then reads new drawers better "
                         "(measured by `python -m lenet bench teach-drawn`, docs/data.md).")
if st.button("Train on my drawings", type="primary") and roles.within_quota(1):
    drawn = store.to_charset()
    split = ui.check_data(ui.teach_split, drawn)
    if split is not None:
        # A handful of drawings is learned (100%) within an epoch or two; training on to the
        # epoch cap pulls the outputs onto their codes, so fresh drawings are read reliably.
        recipe = ui.transfer_recipe(int(epochs), 0).replace(target_train_acc=1.01)
        ui.check_data(ui.start_transfer, source, split, n, recipe,
                      f"teach {' '.join(split.classes)} n={n}", kind="teach", k=len(split.train),
                      held_out=len(split.test), drawn=DRAWN_TEACH.copies if augment else 0.0)

jobs = ui.session_jobs("teach")
if jobs:
    job, meta = jobs[-1]
    with st.container(border=True):
        st.markdown(ui.job_title(job, meta))
        test = meta.get("held_out", 0)
        st.caption("test acc: " + (f"read on the last drawing of each character ({test} drawings), kept out of "
                                   "training; with so few it moves in big steps." if test else
                                   "none: with at least 3 samples of every character, the last of each is "
                                   "kept out of training to test on."))
        ui.job_panel(job, "teach")

taught = ui.finished_nets("teach")
if taught:
    st.subheader("4. Test it: draw one of your characters")
    label, net = taught[-1]
    st.caption(f"Using {label}: knows {' '.join(net.classes)}")
    tl, tr = ui.canvas_row()
    with tl:
        test = ui.canvas("teach-test")
    with tr:
        ui.prediction_panel(net, test, "Draw a character to test the taught net.", ui.canvas_objects("teach-test"))
    with st.expander("What it misread, and taking it home"):
        ui.run_details("teach", label, "teach-run", what="held-out drawings", fallback_train=True)
