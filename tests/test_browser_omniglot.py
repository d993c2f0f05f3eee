"""A new browser session transfers the shipped EMNIST source net to Korean characters (Omniglot) on the
Transfer page, then draws on Draw and is read as one of them: issue #20's done-when, in Chromium."""
from __future__ import annotations

import re
import time
import uuid

import pytest

from test_browser import ARGS, ARTIFACTS, CHROMIUM, _draw_n, open_page, playwright, settle, streamlit_app


@pytest.fixture(scope="module")
def emnist_server(tmp_path_factory):
    with streamlit_app(tmp_path_factory.mktemp("home"), "emnist") as url:  # the shipped EMNIST net and set
        yield url


def test_transfer_to_korean_then_draw_reads_a_korean_character(emnist_server):
    ARTIFACTS.mkdir(exist_ok=True)
    sid = uuid.uuid4().hex
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        open_page(page, emnist_server, "transfer", sid)
        page.get_by_text("an Omniglot alphabet").click()
        settle(page)
        page.get_by_role("combobox", name="Alphabet (Omniglot's background alphabets)").click()
        page.get_by_role("option", name="Korean", exact=True).click()
        settle(page)
        assert page.get_by_text("Korean/character01").count(), "the alphabet's characters are picked"
        k = page.get_by_label("Samples per class k", exact=True)
        k.fill("3")
        k.press("Enter")
        epochs = page.get_by_label("Max epochs", exact=True)
        epochs.fill("30")
        epochs.press("Enter")
        settle(page)
        page.get_by_role("button", name="Start", exact=True).click()
        page.get_by_text("Done:").first.wait_for(timeout=120_000)
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(ARTIFACTS / "transfer-korean.png"), full_page=True)

        open_page(page, emnist_server, "draw", sid)
        page.get_by_role("combobox", name="Net that reads your drawing").click()
        page.get_by_role("option", name=re.compile(r"n=4 k=3")).first.click()
        settle(page)
        _draw_n(page, page.locator("canvas").last)
        metric = page.locator('[data-testid="stMetricValue"]')
        metric.wait_for(timeout=20_000)
        end = time.monotonic() + 20
        while not metric.inner_text().startswith("Korean/") and time.monotonic() < end:
            page.wait_for_timeout(200)
        page.screenshot(path=str(ARTIFACTS / "draw-korean.png"), full_page=True)
        assert re.fullmatch(r"Korean/character\d\d", metric.inner_text().strip()), metric.inner_text()
        browser.close()
