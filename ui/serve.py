"""`python -m ui.serve [streamlit options]`: `streamlit run app.py`, warmed up before it answers.

Streamlit imports a page's modules only when the first browser opens it, so a fresh server
made its first visitor wait for torch, plotly and pandas (3-4 s of a 7-9 s first page on a
busy 2-core machine). Here they are imported, and Figure 1 built once, before the server
starts; scripts/app.sh runs the app this way.
"""
from __future__ import annotations

import sys
from pathlib import Path


def warm_up() -> None:
    import pandas  # noqa: F401  (the pages' dataframes)

    from lenet.report.figures import architecture_figure
    from lenet.core.model import LeNet5, architecture

    architecture_figure(architecture(LeNet5()))  # plotly loads its figure classes on first use


def main(argv: list[str]) -> None:
    warm_up()
    from streamlit.web import cli

    cli.main(["run", str(Path(__file__).resolve().parents[1] / "app.py"), *argv], prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
