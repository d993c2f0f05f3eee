"""Opening the app in Streamlit's AppTest: the one way the tests start a session on a page."""
from __future__ import annotations

import uuid
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def open_app(path: str | None = None, sid: str | None = None, *, timeout: float = 60,
             secrets: dict | None = None) -> AppTest:
    """app.py as a browser session runs it: session `sid` (a new one if None; the app keeps only 32 hex
    digits), switched to page `path`, the operator's Streamlit `secrets` set; it raised no exception."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    at.query_params["sid"] = sid or uuid.uuid4().hex
    at.run()
    if path:
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
