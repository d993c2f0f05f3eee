"""Experiments: the paper's grid (retained levels n x samples per class k x trials) on one or more class
splits in the background, Figure 2 filling in live beside the shipped results, Figures 3-5 per k, the
paper's claims checked, CSV and HTML downloads, and finished results to reopen."""
import time

import streamlit as st

import ui
from ui import roles
from lenet import settings
from lenet.grid import experiment
from lenet.report.claims import CLAIMS, check_splits
from lenet.report.claims import describe as describe_claim
from lenet.config import PAPER_LEVELS, PAPER_TRIALS, TRANSFER_RECIPE
from lenet.report.figures import accuracy_vs_levels, min_avg_max

SHIPPED_COMMAND = {"emnist": "python -m lenet reproduce --data emnist --seeds 0 1 2 3 4 5 6 7 8 9 "
                             "--out assets/results-emnist",
                   "omniglot": "python -m lenet reproduce --data omniglot --seeds 0 1 2 3 4 5 --trials 2 "
                               "--readouts mse,ce,centroid,probe --out assets/results-omniglot"}
FIG_K = (1, 10, 40)  # the paper's Figures 3, 4 and 5

st.title("Experiments: the paper's Figures 2-5")
source = ui.require_source()
ds = ui.require_dataset()
if st.radio("New characters from", ("the active set", "Omniglot alphabets"), horizontal=True, key="ex-from",
            help="The active set's other characters (as in the paper), or per class split 20 characters of one "
                 "Omniglot alphabet the source net never saw (docs/omniglot.md).") == "Omniglot alphabets":
    ds = ui.check_data(ui.dataset, "omniglot") or st.stop()
protocol = experiment.grid_protocol(ds)


def figures_3_to_5(summary: list[dict], key: str) -> None:
    ks = sorted({r["k"] for r in summary})
    cols = st.columns(len([k for k in FIG_K if k in ks]) or 1)
    for col, k in zip(cols, [k for k in FIG_K if k in ks] or ks[:1]):
        col.plotly_chart(min_avg_max(summary, k), key=f"fig-{key}-{k}")


def claims_table(claims: list[dict]) -> None:
    rows = [{"the paper says": CLAIMS[c["claim"]], "here": c["verdict"],
             "statistic and 95% interval": describe_claim(c)} for c in claims if c["verdict"] != "not checked"]
    ui.table(rows)


def claims_of(runs: list) -> list[dict]:
    """Each claim per split, or pooled over the splits where there are several."""
    rows = check_splits(experiment.by_split(runs))
    return [c for c in rows if c["seed"] == "pooled"] or rows


def capped_table(summary: list[dict]) -> None:
    """Runs that ended at the training budget without fitting their training set, per (n, k)."""
    ks = sorted({r["k"] for r in summary})
    rows = [{"n": n, **{f"k = {k}": next((f"{r['capped']} of {r['runs']}" for r in summary
                                          if (r["n"], r["k"]) == (n, k)), "") for k in ks}}
            for n in sorted({r["n"] for r in summary})]
    st.caption(f"Runs that ended at the training budget ({TRANSFER_RECIPE.max_steps:,} SGD steps) without "
               f"fitting their training set:")
    ui.table(rows)


shipped = ui.shipped_results(ds)
reference = shipped[2] if shipped else None
if shipped:
    made_on, splits, across, outputs = shipped
    runs = sum(len(r) for r in splits.values())
    # open for a newcomer; closed once a grid of one's own runs, so its live figure is in view
    with st.expander(f"Shipped results: {len(splits)} class splits, {runs} runs",
                     expanded=not ui.session_jobs("experiment")):
        st.caption(f"Made on {made_on} with this project's transfer recipe by "
                   f"`{SHIPPED_COMMAND.get(ds.source.split('-')[0], '?')}`. "
                   f"Figure 2: the mean over "
                   f"the class splits (seeds {', '.join(map(str, splits))}), error bars its 95% interval "
                   f"(splits resampled); Figures 3-5: min, average and max over every trial of every split.")
        st.plotly_chart(accuracy_vs_levels(across), key="shipped-fig2")
        pooled = experiment.summarize([r for rs in splits.values() for r in rs])
        figures_3_to_5(pooled, "shipped")
        capped_table(pooled)
        if outputs["margins"]:
            st.markdown("**Transfer margin over no transfer (n = 0), test accuracy, pooled over the splits**")
            ui.table([{"k": m["k"], "transfer net": m["n"], "margin": f"{100 * m['margin']:+.1f} points",
                       "95% interval": f"{100 * m['lo']:+.1f} to {100 * m['hi']:+.1f}"} for m in outputs["margins"]])
        st.markdown("**The paper's claims, pooled over the splits** (per split: claims.csv)")
        claims_table([c for c in outputs["claims"] if c["seed"] == "pooled"])

st.subheader("Run the grid")
c1, c2, c3 = st.columns(3)
levels = c1.multiselect("Retained levels n", PAPER_LEVELS, default=list(PAPER_LEVELS), key="ex-levels",
                        help="How many of the source net's lowest levels each run copies and freezes "
                             "(0: a fresh net, no transfer).")
samples = c2.multiselect("Samples per class k", protocol["samples"],
                         key="ex-k-omniglot" if ui.is_omniglot(ds) else "ex-k",
                         default=[k for k in (1, 5, 10) if k in protocol["samples"]],
                         help="Training images of each new character; one run per k.")
trials = c3.number_input("Trials", 1, 20, 2, key="ex-trials",
                         help=f"Runs per cell (n, k), each on other samples and another start; the paper uses "
                              f"{PAPER_TRIALS}.")
steps = c1.number_input("Training budget (SGD steps per run)", 1, 100_000, TRANSFER_RECIPE.max_steps, key="ex-steps",
                        help="The most SGD steps a run takes; it stops earlier once it classifies all its training "
                             f"samples and its training loss is at most {TRANSFER_RECIPE.target_train_loss:g}.")
seeds = c2.multiselect("Class splits (seeds)", list(range(10)), default=[0], key="ex-seeds",
                       help="Each seed draws its own 20 new characters, samples and initialisations; several "
                            "show how much the result depends on which characters are new.")
seeds = sorted(seeds)
if seeds:
    targets, where_from = ui.check_data(experiment.grid_targets, ds, source.classes, seeds[0]) or st.stop()
    per = protocol["test_per_class"]
    st.caption(f"Source net: {' '.join(source.classes)} -> new characters (seed {seeds[0]}){where_from}: "
               f"{' '.join(targets)} ({per} test samples of each: {per * len(targets):,} test characters).")
cells = len(levels) * len(samples) * int(trials) * len(seeds)
st.caption(f"{cells} runs. Figure 2 fills in live as they finish; the results then appear under "
           f"**Your finished results**.")
if st.button("Run the grid", type="primary") and roles.require_teacher("start a grid"):
    if not levels or not samples or not seeds:
        st.error("Choose at least one retained level n, one k and one seed.")
    else:
        out = settings.home() / "experiments" / ui.session_id() / time.strftime("%Y%m%d-%H%M%S")
        ui.check_data(ui.start_experiment, source, ds, seeds, sorted(levels), sorted(samples), int(trials),
                      TRANSFER_RECIPE.replace(max_steps=int(steps)), out,
                      f"grid of {cells} runs" + (f" on {len(seeds)} class splits" if len(seeds) > 1 else ""))

jobs = ui.session_jobs("experiment")
labels = {m["out_dir"]: ui.job_label(j, m) for j, m in jobs}


def live_figure(snap):
    """Figure 2 while the grid runs; a finished grid's figures are shown once, below."""
    return None if snap.state in ("done", "stopped", "failed", "interrupted") else ui.experiment_chart(snap, reference)


for job, meta in reversed(jobs[-1:]):
    with st.container(border=True):
        st.markdown(ui.job_title(job, meta) + (" (dashed: the shipped results)" if reference else ""))
        ui.job_panel(job, "experiment", chart=live_figure)

st.subheader("Your finished results")
finished = ui.experiment_dirs()
if not finished:
    st.caption("None yet: each grid you run is kept on the server, so it can be reopened here later.")
else:
    def describe(p) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.strptime(p.name, "%Y%m%d-%H%M%S")) \
            if p.name[:8].isdigit() else p.name
        return f"{labels[str(p)]}, started {when}" if str(p) in labels else f"grid started {when}"
    pick = st.selectbox("Grid", finished, format_func=describe, key="ex-reopen",
                        help="The newest first; each keeps its figures, claims and files.")
    try:
        runs = ui.read_experiment(pick)
    except (OSError, ValueError, KeyError) as e:
        st.error(f"{pick.name}: cannot be reopened ({type(e).__name__})")
    else:
        if runs:
            summary = experiment.summarize(runs)
            st.plotly_chart(accuracy_vs_levels(summary, reference), key="reopen-fig2")
            figures_3_to_5(summary, "reopen")
            capped_table(summary)
            claims_table(claims_of(runs))
            with st.expander("What one of its runs misread"):
                ui.grid_run_closer(pick, "ex-closer", ds)
        files = [p for name in ("runs.csv", "summary.csv", "report.html", "seeds.csv", "margins.csv", "claims.csv")
                 for p in [pick / name] if p.exists()]
        cols = st.columns(max(1, len(files)))
        for col, f in zip(cols, files):
            mime = "text/html" if f.suffix == ".html" else "text/csv"
            col.download_button(f"Download {f.name}", f.read_bytes(), f"{pick.name}-{f.name}", mime=mime,
                                key=f"dl-{f.name}")
