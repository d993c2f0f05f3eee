"""Source net: choose the dataset, train a source net in the background (or load one), make it active."""
import random
import re

import streamlit as st

import ui
from ui import roles
from lenet.core import checkpoint
from lenet.config import DRAWN_SOURCE, N_CLASSES, SOURCE_RECIPE
from lenet.data import DataError, active_set

st.title("Source net")
s = ui.state()

st.subheader("1. Dataset")
emnist, _ = active_set("emnist")
kinds = {"synthetic": "built-in synthetic characters (not real handwriting)",
         "emnist": emnist,
         "path": "EMNIST from a folder or archive path"}
current = "path" if s.data_path else s.data_kind
choice = st.radio("Characters", list(kinds), format_func=kinds.get, index=list(kinds).index(current),
                  key="src-kind", help="The handwriting every page uses: to train source nets, to draw the "
                                       "new characters from, to test on.")
path = upload = None
if choice == "path":
    roots = len(ui.browser_data_roots())
    path = st.text_input("Folder or gzip.zip with emnist-*-ubyte.gz files, inside one of the server's "
                         f"{roots} data folder(s)" if roots else "Folder or gzip.zip (no server data folder is open)",
                         key="src-path",
                         help="Only the data folders the server's operator opened (LENET_DATA_DIRS) can be read; "
                              "a relative path is looked up inside each. The operator tells you what is there.")
    upload = st.file_uploader(f"Or upload an EMNIST zip (at most {ui.MAX_UPLOAD_MB} MB)", type=["zip"],
                              key="src-zip", help="NIST's gzip.zip, or a zip of its emnist-*-ubyte.gz files.")
if st.button("Use this dataset"):
    kind = "emnist" if choice == "path" else choice
    try:
        chosen = ui.browser_data_path(path, upload) if choice == "path" else None
        ui.dataset(kind, chosen)
    except DataError as e:
        st.error(ui.hide_paths(str(e)))
    else:
        s.data_kind, s.data_path = kind, chosen
        st.success(f"Using {ui.data_label(s.data_kind, s.data_path)}.")
try:
    ds = ui.current_dataset()
except DataError as e:
    st.error(f"The active dataset cannot be loaded: {ui.hide_paths(str(e))}")
    st.stop()
st.caption(f"Active: **{ui.active_data()[0]}**: {ds.description} ({len(ds.classes)} classes)")
ui.emnist_download_panel()

st.subheader("2. The active source net")
net, label, _ = ui.active_source()
if net is None:
    ui.require_source()
st.write(f"**{label}** — {len(net.classes)} characters: `{' '.join(net.classes)}`, "
         f"training accuracy {net.meta.get('train_acc', float('nan')):.1%}")
st.download_button("Download the active source net", checkpoint.to_bytes(net), "source-net.safetensors")

with st.expander("Load a saved source net"):
    uploaded = st.file_uploader("A model.safetensors saved by this app or `python -m lenet train-source`",
                                type=["safetensors"], key="src-upload",
                                help="The net's weights with its characters and codes, as Download gives them.")
    if uploaded is not None and st.button("Use the uploaded net"):
        try:
            loaded = checkpoint.from_bytes(uploaded.getvalue(), uploaded.name)
        except checkpoint.ModelFileError as e:
            st.error(str(e))
        else:
            s.source, s.source_label = loaded, f"uploaded: {uploaded.name}"
            st.rerun()
    saved = sorted(p.parent for p in ui.session_dir("nets").glob("*/model.safetensors"))
    saved += sorted(p.parent for p in ui.ASSETS.glob("*/model.safetensors"))
    if saved:
        pick = st.selectbox("Or a saved one", saved, format_func=lambda p: p.name, key="src-saved",
                            help="Nets saved in this session, and those that ship with the app.")
        if st.button("Use the saved net"):
            try:
                s.source, s.source_label = checkpoint.load(pick), f"saved: {pick.name}"
            except checkpoint.ModelFileError as e:
                st.error(str(e))
            else:
                st.rerun()

st.subheader("3. Train a new source net")


def pick_random() -> None:
    st.session_state["src-chars"] = sorted(random.sample(ds.classes, min(N_CLASSES, len(ds.classes))))


if "src-chars" not in st.session_state:
    st.session_state["src-chars"] = [c for c in net.classes if c in ds.classes]
st.session_state["src-chars"] = [c for c in st.session_state["src-chars"] if c in ds.classes]
chars = st.multiselect("Source characters (the paper uses 20)", ds.classes, key="src-chars",
                       help="The characters the source net learns; Transfer later teaches other ones.")
st.button("Random 20", on_click=pick_random)
c1, c2, c3 = st.columns(3)
per_class = c1.number_input("Training samples per character", 1, 5000, 400, key="src-per-class",
                            help="The paper trains its source net on 400 images of each character.")
heldout = c2.number_input("Held-out samples per character", 1, 1000, 100, key="src-heldout",
                          help="Images kept out of training, to measure accuracy on unseen handwriting.")
epochs = c3.number_input("Max epochs", 1, 200, SOURCE_RECIPE.max_epochs, key="src-epochs",
                         help="The most passes over the training images; it stops earlier at "
                              f"{SOURCE_RECIPE.target_train_acc:.2%} training accuracy, as the paper does.")
drawn = st.toggle("Drawn copies", value=True, key="src-drawn",
                  help=f"Train on {DRAWN_SOURCE.copies:g} copy of each character redrawn as the Draw page reads a "
                       "drawing too, so the net reads drawings as well as scans (the paper's net: off). Its "
                       f"{SOURCE_RECIPE.target_train_acc:.2%} is measured on the scanned characters alone.")
if st.button("Start training", type="primary") and roles.require_teacher("train a source net"):
    if len(chars) < 2:
        st.error(f"Pick at least 2 source characters (you picked {len(chars)}).")
    else:
        recipe = SOURCE_RECIPE.replace(max_epochs=int(epochs))
        ui.check_data(ui.start_source_training, ds, chars, int(per_class), int(heldout), recipe,
                      f"source {len(chars)} chars x {per_class}", DRAWN_SOURCE.copies if drawn else 0.0)

for job, meta in reversed(ui.session_jobs("source")):
    with st.container(border=True):
        st.markdown(ui.job_title(job, meta))
        ui.job_panel(job, "source")
        snap = job.snapshot()
        if snap.state == "done":
            trained = snap.result
            a, b, c = st.columns(3)
            if a.button("Make it the active source net", key=f"use-{job.id}"):
                s.source, s.source_label = trained, f"trained here: {ui.job_label(job, meta)}"
                st.rerun()
            name = b.text_input("Save as", value=f"source-{job.id}", key=f"name-{job.id}",
                                help="A name to find it under 'Load a saved source net' later.")
            if b.button("Save", key=f"save-{job.id}"):
                if not re.fullmatch(r"[\w.-]{1,64}", name):
                    st.error("A name is 1-64 letters, digits, '.', '_' or '-'.")
                else:
                    checkpoint.save(trained, ui.session_dir("nets", name))
                    st.success(f"Saved as {name}: 'Load a saved source net' above lists it.")
            c.download_button("Download", checkpoint.to_bytes(trained), f"source-{job.id}.safetensors",
                              key=f"dl-{job.id}")
