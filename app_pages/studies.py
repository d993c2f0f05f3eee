"""Studies: the questions the paper left open, each study's shipped results on several class splits shown at
once, a new run as a background job whose figure fills in beside them, and finished studies to reopen."""
import streamlit as st

import ui
from ui import roles
from lenet import studies

st.title("Studies: the questions the paper left open")
source = ui.require_source()
ds = ui.require_dataset()
targets = ui.default_targets(ds, source)
shipped = ui.state().source is None
mods = {name: studies.get(name) for name in studies.NAMES}


def terms(name: str) -> str:
    return "; ".join(f"*{t}*: {words}" for t, words in ui.TERMS.get(name, []))


with st.expander("All five studies, and their terms in plain words"):  # the chosen one is shown below
    for name, mod in mods.items():
        st.markdown(f"**{name}** ({mod.TITLE}) — {mod.QUESTION}")
        if terms(name):
            st.caption(terms(name))

# the study's full name on a row of its own, so the selector never cuts it off
name = st.selectbox("Study", list(mods), format_func=lambda n: f"{n}: {mods[n].TITLE}", key="st-name",
                    help="Each study asks one question the paper left open; its question is shown below.")
c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
quick = c1.toggle("Quick version (under a minute)", value=True, key="st-quick",
                  help="Fewer runs on fewer samples, to see the study work; the full study takes tens of "
                       "minutes and its command is in the report.")
seed = c2.number_input("Seed", 0, 10_000, 0, key="st-seed",
                       help="Which samples and initialisations the runs use; the same seed repeats the study.")
presets = getattr(mods[name], "PRESETS", {})
preset = st.selectbox("Settings", ["default", *presets], key=f"st-preset-{name}",
                      format_func=lambda p: f"{p}: {presets[p]}" if p in presets else "default: the study's own",
                      help="Other settings this study names; the default is the study's own.") if presets else "default"
st.markdown(f"**{mods[name].TITLE}.** {mods[name].QUESTION}")
if terms(name):
    st.caption(terms(name))
st.caption(f"Source net: {' '.join(source.classes)} -> new characters: {' '.join(targets)}.")


def shipped_view(name: str) -> None:
    """Every shipped set of results of this study, read from their CSVs (no training)."""
    found = ui.shipped_study(name)
    if not found:
        st.caption("No shipped results for this study (assets/results-studies).")
    for j, one in enumerate(found):
        seeds = one["meta"]["seeds"]
        title = f"{name}, {one['title']}" if one["title"] else name
        with st.expander(f"Shipped results: {title} on {len(seeds)} class splits (seeds {', '.join(map(str, seeds))})",
                         expanded=j == 0):
            st.caption(f"On {one['meta'].get('data', 'EMNIST')}. Each figure is the mean over the splits (each split "
                       f"its own source net and new characters); the table gives 95% intervals with the splits "
                       f"resampled and each value's range over the splits. Made by `{one['command']}`.")
            for i, fig in enumerate(one["figures"]):
                st.plotly_chart(fig, key=f"st-shipped-fig{j}-{i}")
            ui.table(one["rows"])


shipped_view(name)
if st.button("Run the study", type="primary") and roles.require_teacher("start a study"):
    ui.check_data(ui.start_study, name, quick, int(seed), source, ds, targets, shipped,
                  None if preset == "default" else preset)


def results_view(name: str, summary: list[dict], key: str) -> None:
    for i, fig in enumerate(mods[name].figures(summary)):
        st.plotly_chart(fig, key=f"st-fig{i}-{key}")
    ui.table(*ui.summary_table(summary))


def live_chart(snap, name: str):
    """The study's first figure while it runs; a finished study's results are shown once, below."""
    summary = ui.live_summary(snap)
    running = snap.state not in ("done", "stopped", "failed", "interrupted")
    return mods[name].figures(summary)[0] if summary and running else None


for job, meta in ui.session_jobs("study")[-1:]:
    with st.container(border=True):
        st.markdown(ui.job_title(job, meta))
        reference = next(iter(ui.shipped_study(meta["study"])), None)
        left, right = st.columns(2) if reference else (None, st.container())
        if reference:  # the shipped figure beside the new run's, which fills in as it trains
            left.plotly_chart(reference["figures"][0], key="st-beside")
            left.caption(f"Shipped: {len(reference['meta']['seeds'])} class splits, "
                         f"{reference['meta'].get('data', 'EMNIST')}.")
        with right:
            ui.job_panel(job, "study", chart=lambda snap, n=meta["study"]: live_chart(snap, n))

st.subheader("Finished studies")
folders = ui.study_dirs()
if not folders:
    st.caption("None yet: finished studies are kept on the server so they can be reopened later.")
else:
    pick = st.selectbox("Finished study", folders, format_func=lambda p: p.name, key="st-reopen",
                        help="The newest first: its figures, its table and its report.")
    try:
        meta, summary = ui.read_study(pick)
        study = meta["study"]
        if study not in mods:
            raise ValueError(f"unknown study {study!r}")
    except (OSError, ValueError, KeyError) as e:
        st.error(f"{pick.name}: cannot be reopened ({type(e).__name__}: {e})")
    else:
        st.markdown(f"**{mods[study].TITLE}.** {meta.get('question', '')}")
        st.code(meta.get("command", ""), language="bash")
        if summary:
            results_view(study, summary, "reopen")
        report = pick / "report.html"
        if report.exists():
            st.download_button("Download report.html", report.read_bytes(), f"{pick.name}-report.html",
                               mime="text/html", key="st-dl-report")
