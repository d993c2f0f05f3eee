"""The Lesson page's glue: the shipped EMNIST grid (whatever the active data), a step's question and
answer, and the quick grid a class may start itself."""
from __future__ import annotations

import time

import streamlit as st

from lenet import settings
from lenet.config import TRANSFER_RECIPE
from lenet.data import CharacterSet
from lenet.core.net import Net
from lenet.files import ASSETS
from lenet.report.lesson import QUICK_K

from .background import job_panel, session_jobs
from .session import session_id
from .training import experiment_chart, start_experiment

SHIPPED = ASSETS / "results-emnist"
QUICK_LEVELS = (0, 5)
QUICK_LABEL = "lesson: quick grid"


@st.cache_data(show_spinner=False)
def shipped_grid() -> tuple[list[dict], list[dict]] | None:
    """(the rows of seeds.csv: each (n, k)'s mean over the class splits with its 95% interval, the rows
    of margins.csv) of the EMNIST grid that ships in assets/results-emnist; None where it is missing."""
    from lenet.grid import experiment
    try:
        out = experiment.read_seed_outputs(SHIPPED)
    except (OSError, ValueError, KeyError):
        return None
    return out["seeds"], out["margins"]


def step(number: int, title: str, text: str) -> None:
    st.subheader(f"{number}. {title}")
    st.markdown(text)


def ask(question: str, answer: str) -> None:
    """The question to ask the class, and its answer behind a click (so the class guesses first)."""
    st.markdown(f"**Ask the class:** {question}")
    with st.expander("The answer"):
        st.markdown(answer)


def quick_grid(source: Net, ds: CharacterSet, reference: list[dict] | None) -> None:
    """A button that starts the lesson's grid (n = 0 and 5, k = 1 and 40, one trial) in the background,
    and the live Figure 2 of the last one started in this session, the shipped means dashed beside."""
    runs = len(QUICK_LEVELS) * len(QUICK_K)
    if st.button(f"Run it ourselves ({runs} runs, n = {' and '.join(map(str, QUICK_LEVELS))}, "
                 f"k = {' and '.join(map(str, QUICK_K))}, one trial)", key="lesson-run",
                 help="A small grid on the active data in the background, under a minute; the figure fills in "
                      "as each run ends. It is kept with your grids on the Experiments page."):
        out = settings.home() / "experiments" / session_id() / time.strftime("%Y%m%d-%H%M%S")
        try:
            start_experiment(source, ds, [0], list(QUICK_LEVELS), list(QUICK_K), 1, TRANSFER_RECIPE, out,
                             QUICK_LABEL)
        except (ValueError, OSError) as e:
            st.error(str(e))
    mine = [(j, m) for j, m in session_jobs("experiment") if m["label"] == QUICK_LABEL]
    if mine:
        job, _ = mine[-1]
        job_panel(job, "lesson-grid", chart=lambda snap: experiment_chart(snap, reference))
