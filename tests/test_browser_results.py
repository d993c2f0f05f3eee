"""A newcomer opens Experiments in a real browser and sees the shipped results at once (Figures 2-5,
labelled as shipped, with their command), on the EMNIST characters those results were made on."""
from __future__ import annotations

import re
import uuid

import pytest

from test_browser import ARGS, ARTIFACTS, CHROMIUM, ROOT, open_page, playwright, streamlit_app

SHIPPED = ROOT / "assets" / "results-emnist"


@pytest.fixture(scope="module")
def emnist_server(tmp_path_factory):
    from lenet.data import find_emnist
    if not (SHIPPED / "seeds.csv").exists():
        pytest.skip("no shipped EMNIST results in assets/results-emnist")
    if find_emnist() is None:
        pytest.skip("no EMNIST characters found (../shared/data/emnist)")
    with streamlit_app(tmp_path_factory.mktemp("home"), "emnist") as url:
        yield url


FIGURE_TITLES = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .map(p => (p.layout && p.layout.title && (p.layout.title.text || p.layout.title)) || '')"""


def test_experiments_shows_the_shipped_figures_on_open(emnist_server):
    assert CHROMIUM.exists()
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        open_page(page, emnist_server, "experiments", uuid.uuid4().hex)  # a brand-new session: nothing run yet
        page.get_by_text("Shipped results:").first.wait_for(timeout=30_000)
        assert page.get_by_text("python -m lenet reproduce --data emnist --seeds 0 1 2").count()
        page.wait_for_timeout(1500)
        titles = page.evaluate(FIGURE_TITLES)
        page.screenshot(path=str(ARTIFACTS / "experiments-shipped.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    titles = [re.sub(r"<[^>]+>", "", t) for t in titles]  # Streamlit's theme wraps titles in <b>
    assert any(t.startswith("Mean test accuracy vs. retained levels") for t in titles), titles  # Figure 2
    for k in (1, 10, 40):  # Figures 3, 4 and 5
        assert any(t.endswith(f"k = {k}") and t.startswith("Min, average and max") for t in titles), titles
