"""Transfer: keep the source net's bottom n levels, train the rest on k samples of 20 new characters."""
import random

import streamlit as st

import ui
from lenet.config import LEVELS, N_CLASSES, TRANSFER_RECIPE
from lenet.report.figures import architecture_figure, compare_runs
from lenet.core.model import architecture
from lenet.core.transfer import trainable_fraction

st.title("Transfer to new characters")
source = ui.require_source()
ds = ui.require_dataset()

# The source net's characters are never offered, so the two sets cannot overlap.
options = [c for c in ds.classes if c not in source.classes]
if len(options) < 2:
    st.error(f"The dataset has only {len(options)} characters the source net does not know; need at least 2.")
    st.stop()


def pick_random() -> None:
    st.session_state["tr-chars"] = sorted(random.sample(options, min(N_CLASSES, len(options))))


if "tr-chars" not in st.session_state:
    st.session_state["tr-chars"] = ui.default_targets(ds, source)
st.session_state["tr-chars"] = [c for c in st.session_state["tr-chars"] if c in options]
chars = st.multiselect("New characters (the paper uses 20; the source net's are excluded)", options,
                       key="tr-chars")
st.button("Random 20", on_click=pick_random)

n = st.slider("Retained levels n (copied from the source net and frozen)", 0, len(LEVELS), 4, key="tr-n")
frozen = ", ".join(l.upper() for l in LEVELS[:n]) or "none"
st.caption(f"Frozen: **{frozen}**. Trainable: **{trainable_fraction(n):.1%}** of the free parameters "
           f"({', '.join(l.upper() for l in (LEVELS + ('f6',))[n:])}).")
st.plotly_chart(architecture_figure(architecture(source.model), retained=n), key="tr-arch")

c1, c2, c3, c4 = st.columns(4)
k = c1.number_input("Samples per class k", 1, 1000, 5, key="tr-k")
trials = c2.number_input("Trials", 1, 10, 1, key="tr-trials")
epochs = c3.number_input("Max epochs", 1, 1000, TRANSFER_RECIPE.max_epochs, key="tr-epochs")
seed = c4.number_input("Seed", 0, 10_000, 0, key="tr-seed")
if st.button("Start", type="primary"):
    if len(chars) < 2:
        st.error(f"Pick at least 2 new characters (you picked {len(chars)}).")
    else:
        splits = [ui.check_data(ui.make_transfer_split, ds, source, chars, int(k), t, int(seed))
                  for t in range(int(trials))]
        if all(sp is not None for sp in splits):
            for t, sp in enumerate(splits):
                recipe = ui.transfer_recipe(int(epochs), int(seed) + t)
                ui.start_transfer(source, sp, n, recipe, f"n={n} k={k} trial {t}", k=int(k), trial=t)

runs = ui.session_jobs("transfer")
active = [(j, m) for j, m in runs if j.snapshot().state not in ("done", "failed", "stopped")]
shown = active or runs[-1:]
for job, meta in shown:
    with st.container(border=True):
        st.markdown(f"**#{job.id} {meta['label']}** ({len(meta['classes'])} characters)")
        ui.job_panel(job, "transfer")

finished = [(j, m, j.snapshot()) for j, m in runs if j.snapshot().state in ("done", "failed", "stopped")]
if finished:
    st.subheader("This session's runs")
    table = []
    for job, meta, snap in finished:
        last = ui.epoch_records(snap.records)[-1:] or [{}]
        tests = [r["test_acc"] for r in ui.epoch_records(snap.records) if r.get("test_acc") is not None]
        table.append({"run": job.id, "n": meta["n"], "k": meta["k"], "trial": meta["trial"], "state": snap.state,
                      "epochs": last[0].get("epoch", 0), "train acc": last[0].get("train_acc"),
                      "test acc": tests[-1] if tests else None,
                      "seconds": round((snap.finished or 0) - (snap.started or 0), 1)})
    st.dataframe(table, hide_index=True, column_config={
        "train acc": st.column_config.NumberColumn(format="percent"),
        "test acc": st.column_config.NumberColumn(format="percent")})
    labels = {f"#{j.id} {m['label']}": snap for j, m, snap in finished}
    pick = st.multiselect("Compare on one chart", list(labels), default=list(labels)[-4:], key="tr-compare")
    if pick:
        st.plotly_chart(compare_runs([{"label": p, "records": ui.epoch_records(labels[p].records)} for p in pick]),
                        key="tr-compare-chart")
    nets = ui.finished_nets("transfer")
    if nets:
        c1, c2 = st.columns([3, 1])
        label = c1.selectbox("A run's net (finished or stopped; also on Draw and Feature maps)", [n for n, _ in nets],
                             key="tr-net")
        c2.download_button("Download", ui.net_bytes(dict(nets)[label]), "transfer-net.safetensors", key="tr-dl")
