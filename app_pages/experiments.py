"""Experiments: the paper's grid (retained levels n x samples per class k x trials) in the background,
Figure 2 filling in live, Figures 3-5 per k, CSV and HTML downloads, and finished results to reopen."""
import time

import streamlit as st

import ui
from lenet import experiment
from lenet.config import PAPER_LEVELS, PAPER_SAMPLES, PAPER_TRIALS, TRANSFER_RECIPE
from lenet.figures import accuracy_vs_levels, min_avg_max

st.title("Experiments: the paper's Figures 2-5")
source = ui.require_source()
ds = ui.require_dataset()
targets = ui.default_targets(ds, source)
st.caption(f"Source net: {' '.join(source.classes)} -> new characters: {' '.join(targets)} "
           f"(50 test samples of each: {50 * len(targets):,} test characters).")

c1, c2, c3 = st.columns(3)
levels = c1.multiselect("Retained levels n", PAPER_LEVELS, default=list(PAPER_LEVELS), key="ex-levels")
samples = c2.multiselect("Samples per class k", PAPER_SAMPLES, default=[1, 5, 10], key="ex-k")
trials = c3.number_input("Trials", 1, 20, 2, key="ex-trials", help=f"the paper uses {PAPER_TRIALS}")
epochs = c1.number_input("Max epochs per run", 1, 1000, TRANSFER_RECIPE.max_epochs, key="ex-epochs")
seed = c2.number_input("Seed", 0, 10_000, 0, key="ex-seed")
cells = len(levels) * len(samples) * int(trials)
st.caption(f"{cells} runs.")
if st.button("Run the grid", type="primary"):
    if not levels or not samples:
        st.error("Choose at least one retained level n and one k.")
    else:
        out = ui.lenet_home() / "experiments" / ui.session_id() / time.strftime("%Y%m%d-%H%M%S")
        ui.check_data(ui.start_experiment, source, ds, targets, sorted(levels), sorted(samples), int(trials),
                      int(seed), TRANSFER_RECIPE.replace(max_epochs=int(epochs)), out, f"grid of {cells} runs")


def results_view(summary: list[dict], key: str) -> None:
    """Figure 2 and, for a chosen k, the min/avg/max figure."""
    st.plotly_chart(accuracy_vs_levels(summary), key=f"fig2-{key}")
    ks = sorted({r["k"] for r in summary})
    k = st.selectbox("Min / average / max over trials for k =", ks, key=f"k-{key}")
    st.plotly_chart(min_avg_max(summary, k), key=f"fig3-{key}")


jobs = ui.session_jobs("experiment")
for job, meta in reversed(jobs[-1:]):
    with st.container(border=True):
        st.markdown(f"**#{job.id} {meta['label']}**")
        ui.job_panel(job, "experiment", chart=ui.experiment_chart)
        snap = job.snapshot()
        summary = ui.experiment_summary(snap)
        if snap.state in ("done", "stopped", "failed") and summary:
            results_view(summary, f"job{job.id}")

st.subheader("Finished results")
finished = ui.experiment_dirs()
if not finished:
    st.caption("None yet: results are kept under "
               f"{ui.lenet_home() / 'experiments'} so they can be reopened later.")
else:
    pick = st.selectbox("Reopen", finished, format_func=lambda p: p.name, key="ex-reopen")
    try:
        runs = ui.read_experiment(pick)
    except (OSError, ValueError, KeyError) as e:
        st.error(f"{pick.name}: cannot be reopened ({type(e).__name__}: {e})")
    else:
        if runs:
            results_view(experiment.summarize(runs), "reopen")
        for name, mime in (("runs.csv", "text/csv"), ("summary.csv", "text/csv"), ("report.html", "text/html")):
            f = pick / name
            if f.exists():
                st.download_button(f"Download {name}", f.read_bytes(), f"{pick.name}-{name}", mime=mime,
                                   key=f"dl-{name}")
