"""Transfer: keep the source net's bottom n levels, train the rest on k samples of 20 new characters."""
import random

import streamlit as st

import ui
from ui import roles
from lenet.config import LEVELS, N_CLASSES, TRANSFER_RECIPE
from lenet.report.figures import architecture_figure, compare_runs, training_curves
from lenet.core.model import architecture
from lenet.core.transfer import trainable_fraction
from lenet.data.omniglot import alphabet_split, alphabets

st.title("Transfer to new characters")
source = ui.require_source()
ds = ui.require_dataset()

# New characters from the active set, or from an Omniglot alphabet the source net never saw (docs/omniglot.md).
from_omniglot = st.radio("New characters from", ("the active set", "an Omniglot alphabet"), horizontal=True,
                         key="tr-from",
                         help="The active set's other characters (as in the paper), or the characters of one "
                              "alphabet the source net never saw (Omniglot: 20 people drew each character once; "
                              "k of them train, the rest test).") == "an Omniglot alphabet"
chars_key = "tr-chars"
if from_omniglot:
    ds = ui.check_data(ui.dataset, "omniglot") or st.stop()
    groups = alphabets(ds)
    alphabet = st.selectbox("Alphabet (Omniglot's background alphabets)", list(groups), key="tr-alphabet",
                            help="The alphabet whose characters the new net learns; none of them is Latin "
                                 "handwriting the EMNIST source net has seen.")
    chars_key = f"tr-chars-{alphabet}"
# The source net's characters are never offered, so the two sets cannot overlap.
options = [c for c in (groups[alphabet] if from_omniglot else ds.classes) if c not in source.classes]
if len(options) < 2:
    st.error(f"The dataset has only {len(options)} characters the source net does not know; need at least 2.")
    st.stop()


def pick_random() -> None:
    st.session_state[chars_key] = sorted(random.sample(options, min(N_CLASSES, len(options))))


def shipped_means() -> dict[tuple[int, int], float]:
    """{(n, k): mean test accuracy} of the shipped grid on this kind of data, if any."""
    shipped = ui.shipped_results(ds)
    return {(r["n"], r["k"]): r["mean"] for r in shipped[2]} if shipped else {}


def run_chart(meta: dict):
    """A run's live curves with the chance line and, where shipped results have them, the shipped mean
    test accuracy at n = 0 (no transfer) and at this run's n, for its k: what the run is read against."""
    means = shipped_means()
    refs = [(f"shipped, n = {n}: {means[n, meta['k']]:.0%}", means[n, meta["k"]])
            for n in sorted({0, meta["n"]}) if (n, meta["k"]) in means]

    def chart(snap):
        epochs = ui.epoch_records(snap.records)
        return training_curves(epochs, chance=1 / len(meta["classes"]), references=refs) if epochs else None
    return chart


if chars_key not in st.session_state:
    st.session_state[chars_key] = options[:N_CLASSES] if from_omniglot else ui.default_targets(ds, source)
st.session_state[chars_key] = [c for c in st.session_state[chars_key] if c in options]

# Controls on the left, the live run on the right: the chart stays in view beside what made it.
row = st.container(horizontal=True, gap="large")  # side by side; stacked when the page is narrow
left, right = row.container(width=380), row.container()
with left:
    chars = st.multiselect("New characters (the paper uses 20; the source net's are excluded)", options,
                           key=chars_key, help="The characters the new net learns; it never saw them. "
                                                "With 20 of them, guessing is right 5% of the time.")
    st.button("Random 20", on_click=pick_random, help="Pick 20 new characters at random.")
    n = st.slider("Retained levels n (copied from the source net and frozen)", 0, len(LEVELS), 4, key="tr-n",
                  help="n = 0 trains a fresh net from scratch (no transfer); n = 5 keeps C1 to C5 and trains "
                       "only F6 and the output.")
    readout = st.selectbox("Readout", list(ui.READOUTS), format_func=ui.READOUTS.get, key="tr-readout",
                           help="How the new characters are read from the retained levels: the paper's way, or "
                                "one of three others (docs/omniglot.md, Readouts); the run reports its accuracy.")
    frozen = ", ".join(l.upper() for l in LEVELS[:n]) or "none"
    st.caption(f"Frozen: **{frozen}**. Trainable: **{trainable_fraction(n):.1%}** of the free parameters "
               f"({', '.join(l.upper() for l in (LEVELS + ('f6',))[n:])}).")
    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    k = c1.number_input("Samples per class k", 1, 1000, 5, key="tr-k",
                        help="Training images of each new character (the paper: 1 to 40; Omniglot: 1 to 19 "
                             "of its 20 drawers, the other drawers test).")
    trials = c2.number_input("Trials", 1, 10, 1, key="tr-trials",
                             help="Independent runs, each on other samples and another initialisation.")
    epochs = c3.number_input("Max epochs", 1, TRANSFER_RECIPE.max_epochs, TRANSFER_RECIPE.max_epochs, key="tr-epochs",
                             help="The most passes over the training samples; a run stops earlier once it "
                                  "classifies all of them and its training loss is at most "
                                  f"{TRANSFER_RECIPE.target_train_loss:g}, or after "
                                  f"{TRANSFER_RECIPE.max_steps:,} SGD steps.")
    seed = c4.number_input("Seed", 0, 10_000, 0, key="tr-seed",
                           help="Which samples are drawn and how the net starts; the same seed gives the same run.")
    baseline = st.checkbox("Also train n = 0 beside it", key="tr-baseline", value=False, disabled=n == 0,
                           help="A net trained from scratch (no transfer) on the same samples, beside each run: "
                                "what transfer is measured against.")
    if st.button("Start", type="primary") and roles.within_quota(int(trials) * (2 if baseline and n > 0 else 1)):
        if len(chars) < 2:
            st.error(f"Pick at least 2 new characters (you picked {len(chars)}).")
        else:
            splits = [ui.check_data(alphabet_split, ds, source.classes, chars, int(k), t, int(seed))
                      if from_omniglot else ui.check_data(ui.make_transfer_split, ds, source, chars, int(k), t,
                                                          int(seed))
                      for t in range(int(trials))]
            if all(sp is not None for sp in splits):
                batch = len(ui.session_jobs("transfer"))  # the runs of one Start are shown together
                for t, sp in enumerate(splits):
                    recipe = ui.transfer_recipe(int(epochs), int(seed) + t)
                    ui.start_transfer(source, sp, n, recipe, ui.run_name(n, k, t, readout), k=int(k), trial=t,
                                      batch=batch, readout=readout)
                    if baseline and n > 0:
                        ui.start_transfer(source, sp, 0, recipe, ui.run_name(0, k, t, readout) + " (baseline)",
                                          k=int(k), trial=t, batch=batch, readout=readout)

runs = ui.session_jobs("transfer")
with right:
    active = [(j, m) for j, m in runs if j.snapshot().state not in ("done", "failed", "stopped")]
    last = runs[-1][1].get("batch") if runs else None
    shown = active or [(j, m) for j, m in runs if last is not None and m.get("batch") == last] or runs[-1:]
    if not shown:
        st.info("Your run's live chart appears here: loss on the left, accuracy on the right, with the chance "
                "line (guessing) and, on EMNIST, the shipped mean test accuracy at n = 0 (no transfer) and at "
                "your n, to compare with.")
    for job, meta in shown:
        with st.container(border=True):
            st.markdown(f"{ui.job_title(job, meta)} ({len(meta['classes'])} characters)")
            ui.job_panel(job, "transfer", chart=run_chart(meta))

st.plotly_chart(architecture_figure(architecture(source.model), retained=n), key="tr-arch")

finished = [(j, m, j.snapshot()) for j, m in runs if j.snapshot().state in ("done", "failed", "stopped")]
if finished:
    st.subheader("This session's runs")
    table = []
    for job, meta, snap in finished:
        last = ui.epoch_records(snap.records)[-1:] or [{}]
        tests = [r["test_acc"] for r in ui.epoch_records(snap.records) if r.get("test_acc") is not None]
        table.append({"run": ui.job_label(job, meta).split(":")[0], "readout": meta.get("readout", "mse"),
                      "n": meta["n"], "k": meta["k"],
                      "trial": meta["trial"], "state": snap.state, "epochs": last[0].get("epoch", 0),
                      "train acc": last[0].get("train_acc"), "test acc": tests[-1] if tests else None,
                      "seconds": f"{(snap.finished or 0) - (snap.started or 0):.1f}"})
    ui.table(table, percent=("train acc", "test acc"))
    labels = {ui.job_label(j, m): snap for j, m, snap in finished}
    pick = st.multiselect("Compare on one chart", list(labels), default=list(labels)[-4:], key="tr-compare",
                          help="Test accuracy (solid) and training accuracy (dotted) of the chosen runs.")
    if pick:
        st.plotly_chart(compare_runs([{"label": p, "records": ui.epoch_records(labels[p].records)} for p in pick]),
                        key="tr-compare-chart")
    nets = ui.finished_nets("transfer")
    if nets:
        st.subheader("What a run misread, and taking it home")
        label = st.selectbox("A run's net (finished or stopped; also on Draw and Feature maps)", [n for n, _ in nets],
                             key="tr-net", help="What it misread on its test characters, and its downloads.")
        ui.run_details("transfer", label, "tr")
