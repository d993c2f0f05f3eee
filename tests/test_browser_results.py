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
        assert page.get_by_text("Transfer margin over no transfer").count()  # the margins with their intervals
        assert page.get_by_text("ended at the training budget").count()     # which runs hit the budget
        page.wait_for_timeout(1500)
        titles = page.evaluate(FIGURE_TITLES)
        page.screenshot(path=str(ARTIFACTS / "experiments-shipped.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    titles = [re.sub(r"<[^>]+>", "", t) for t in titles]  # Streamlit's theme wraps titles in <b>
    assert any(t.startswith("Mean test accuracy vs. retained levels") for t in titles), titles  # Figure 2
    for k in (1, 10, 40):  # Figures 3, 4 and 5
        assert any(t.endswith(f"k = {k}") and t.startswith("Min, average and max") for t in titles), titles


def test_studies_shows_the_shipped_results_on_open(emnist_server):
    """/studies in a brand-new session: the shipped results of the chosen study on three class splits, their
    figures drawn, the command that made them, and nothing trained."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        open_page(page, emnist_server, "studies", uuid.uuid4().hex)
        page.get_by_text(re.compile(r"^Shipped results: \S+ on 3 class splits")).first.wait_for(timeout=30_000)
        assert page.get_by_text("python -m lenet study all --seeds 0 1 2").count()
        page.wait_for_timeout(1500)
        titles = [re.sub(r"<[^>]+>", "", t) for t in page.evaluate(FIGURE_TITLES)]
        page.screenshot(path=str(ARTIFACTS / "studies-shipped.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.get_by_role("button", name="Stop").count() == 0, "opening the page starts no study"
        # source-classes has a second shipped set, S in the hundreds, folded below the first: open it
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=re.compile(r"^source-classes:")).click()
        hundreds = page.get_by_text(re.compile(r"^Shipped results: source-classes, S in the hundreds"))
        hundreds.first.wait_for(timeout=30_000)
        hundreds.first.click()
        page.get_by_text("python -m lenet study source-classes --preset hundreds --seeds 0 1 2").first.wait_for(
            timeout=30_000)
        page.wait_for_timeout(1500)
        axes = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
            .filter(p => p.getClientRects().length > 0)
            .flatMap(p => (p.data || []).flatMap(t => t.x || []))""")
        page.screenshot(path=str(ARTIFACTS / "studies-hundreds.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
    assert titles and all(titles), titles  # every shipped figure is drawn, each with its title
    assert 200 in axes and 100 in axes, "the hundreds' figure is drawn, S up to 200"


LAYOUT_PROBLEMS = """() => {
  const out = [];
  const visible = el => el.getClientRects().length > 0;
  const seen = new Map();
  for (const p of document.querySelectorAll('.js-plotly-plot')) {
    if (!visible(p)) continue;
    const box = p.getBoundingClientRect();
    const t = p.querySelector('.gtitle');
    const text = t ? t.textContent : '';
    if (t) {
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1) out.push(`figure title cut off: "${text}"`);
    }
    const sig = text + JSON.stringify((p.data || []).map(d => [d.type, d.name, d.x, d.y, d.z]));
    if (seen.has(sig)) out.push(`figure shown twice: "${text || (p.data || []).map(d => d.name).join(', ')}"`);
    seen.set(sig, true);
  }
  for (const c of document.querySelectorAll('[data-testid="stTable"] th, [data-testid="stTable"] td')) {
    if (visible(c) && c.scrollWidth > c.clientWidth + 1) out.push(`table cell cut off: "${c.textContent}"`);
  }
  if (document.querySelector('[data-testid="stDataFrame"]'))  // its cells cut text invisibly: use ui.table
    out.push('an st.dataframe, whose cells cannot be checked');
  const inputs = '[data-testid="stTextInput"], [data-testid="stNumberInput"], [data-testid="stSelectbox"], ' +
    '[data-testid="stMultiSelect"], [data-testid="stSlider"], [data-testid="stRadio"], ' +
    '[data-testid="stCheckbox"], [data-testid="stFileUploader"], [data-testid="stTextArea"]';
  for (const w of document.querySelectorAll(inputs)) {
    if (visible(w) && !w.querySelector('[aria-label^="Help for"], [data-testid="stTooltipIcon"]'))
      out.push(`input without help: "${(w.querySelector('label') || w).textContent.trim().slice(0, 60)}"`);
  }
  return out;
}"""


@pytest.mark.parametrize("size", [(1400, 1000), (1024, 768)], ids=["1400x1000", "1024x768"])
def test_every_page_fits_and_explains_its_inputs(emnist_server, size):
    """A newcomer at a common screen size, page by page in a new session: no figure title or table cell
    cut off, no figure shown twice, a help text on every input; the Lesson shows every step's figure."""
    from test_browser import PAGES
    ARTIFACTS.mkdir(exist_ok=True)
    problems = {}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        sid = uuid.uuid4().hex
        for path in PAGES:
            open_page(page, emnist_server, path, sid)
            page.wait_for_timeout(800)  # plotly lays out its titles after the script run
            found = page.evaluate(LAYOUT_PROBLEMS)
            if found:
                problems[path or "home"] = found
            if path == "lesson":  # a new session: every step's figure from what ships, nothing trained
                lesson = [re.sub(r"<[^>]+>", "", t) for t in page.evaluate(FIGURE_TITLES)]
                assert page.get_by_text("Ask the class:").count() == 6
                assert page.get_by_role("button", name="Stop").count() == 0, "the lesson trains nothing by itself"
            assert page.locator('[data-testid="stException"]').count() == 0, f"/{path} shows an exception"
        page.screenshot(path=str(ARTIFACTS / f"newcomer-teach-{size[0]}.png"))
        browser.close()
    assert not problems, problems
    for start in ("LeNet-5 as in the paper's Figure 1", "C1 kernels", "C1: 6 maps", "C3: 16 maps"):
        assert any(t.startswith(start) for t in lesson), (start, lesson)
    assert sum(t.startswith("Mean test accuracy vs. retained levels") for t in lesson) == 2, lesson  # quick, Figure 2

