"""A lightweight client of Streamlit's own protocol, for the classroom harness (`classroom.py
--clients protocol`): what a browser asks of the server, without the browser.

A page load is what a new browser tab costs the server: GET the page and every script and
style sheet it names (gzip accepted, six at a time, as a browser fetches them), open the
websocket `/_stcore/stream`, ask for the page's first script run and read every message
until the run finishes. A drawing is the very websocket message a real Chromium sent when
a stroke ended (captured once by the harness: the canvas component's state, strokes and
PNG), replayed with this session's id; its reading is the metric of the run it causes.
A running job's page is polled as the frontend polls it: the server's auto-rerun messages
start fragment reruns at the interval they name.

Not measured here: the browser's own work (parsing the JavaScript, drawing the page),
which in a classroom happens on the students' computers, not on the server.
"""
from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

FINISHED = (0, 3)          # FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY (2: early, for a rerun)
FETCHERS = ThreadPoolExecutor(max_workers=32)
PARALLEL_FETCHES = 6       # a browser's connections per host


@dataclass
class Run:
    """What one script run sent: its elements' types in order, metric values, exceptions, auto reruns."""
    seconds: float
    elements: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    buttons: dict[str, str] = field(default_factory=dict)  # label -> widget id
    exceptions: list[str] = field(default_factory=list)
    auto_reruns: dict[str, float] = field(default_factory=dict)  # fragment id -> interval (s)
    page_hash: str | None = None
    full: bool = True        # a whole script run (the frontend then drops every auto rerun it had), not a fragment's
    first_run: float = 0.0   # of a page load: the first script run alone, after the fetches and the connection


def page_assets(base: str) -> list[str]:
    """The page's own scripts and style sheets, as index.html names them."""
    html = _get(base + "/").decode()
    return [base + "/" + p.removeprefix("./") for p in re.findall(r'(?:src|href)="(\./static/[^"]+)"', html)]


def _get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


async def fetch_page(base: str, assets: list[str]) -> int:
    """GET the page and its assets (six at a time); bytes received."""
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(PARALLEL_FETCHES)

    async def one(url: str) -> int:
        async with sem:
            return len(await loop.run_in_executor(FETCHERS, _get, url))
    sizes = await asyncio.gather(one(base + "/"), *(one(u) for u in assets))
    return sum(sizes)


class Session:
    """One browser tab's conversation with the server: a websocket and the runs it asks for."""

    def __init__(self, base: str, sid: str):
        self.base, self.sid = base, sid
        self.ws = None
        self.page_hash: str | None = None

    async def open(self, page: str, assets: list[str], timeout: float) -> Run:
        """Load `page` as a new tab does; the Run's seconds cover the fetches, the connection and the first run."""
        t0 = time.monotonic()
        await asyncio.wait_for(fetch_page(self.base, assets), timeout)
        self.ws = await asyncio.wait_for(
            connect(self.base.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"],
                    max_size=None, open_timeout=timeout), timeout)
        msg = BackMsg()
        msg.rerun_script.query_string = f"sid={self.sid}"
        msg.rerun_script.page_name = page
        run = await self._send(msg, timeout - (time.monotonic() - t0))
        run.first_run, run.seconds = run.seconds, time.monotonic() - t0
        return run

    async def replay(self, frame: bytes, timeout: float) -> Run:
        """Send a captured rerun message (a drawing, a Clear) as this session's."""
        msg = BackMsg()
        msg.ParseFromString(frame)
        msg.rerun_script.query_string = f"sid={self.sid}"
        return await self._send(msg, timeout)

    async def click(self, button_id: str, timeout: float) -> Run:
        msg = BackMsg()
        msg.rerun_script.query_string = f"sid={self.sid}"
        msg.rerun_script.page_script_hash = self.page_hash or ""
        msg.rerun_script.widget_states.widgets.add(id=button_id, trigger_value=True)
        return await self._send(msg, timeout)

    async def fragment(self, fragment_id: str, timeout: float) -> Run:
        """A fragment's auto rerun, as the frontend sends it."""
        msg = BackMsg()
        msg.rerun_script.query_string = f"sid={self.sid}"
        msg.rerun_script.page_script_hash = self.page_hash or ""
        msg.rerun_script.fragment_id = fragment_id
        msg.rerun_script.is_auto_rerun = True
        return await self._send(msg, timeout)

    async def _send(self, msg: BackMsg, timeout: float) -> Run:
        t0 = time.monotonic()
        await self.ws.send(msg.SerializeToString())
        run = Run(0.0)
        end = t0 + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError("no finished script run in time")
            fm = ForwardMsg()
            fm.ParseFromString(await asyncio.wait_for(self.ws.recv(), left))
            kind = fm.WhichOneof("type")
            if kind == "navigation":  # the page that runs (st.navigation), named as later reruns name it
                self.page_hash = run.page_hash = fm.navigation.page_script_hash or self.page_hash
            elif kind == "auto_rerun":
                run.auto_reruns[fm.auto_rerun.fragment_id] = fm.auto_rerun.interval
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                et = el.WhichOneof("type")
                run.elements.append(et)
                if et == "metric":
                    run.metrics.append(el.metric.body)
                elif et == "button":
                    run.buttons[el.button.label] = el.button.id
                elif et == "exception":
                    run.exceptions.append(f"{el.exception.type}: {el.exception.message}"[:300])
            elif kind == "script_finished" and fm.script_finished in FINISHED:
                run.seconds, run.full = time.monotonic() - t0, fm.script_finished == 0
                return run

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
