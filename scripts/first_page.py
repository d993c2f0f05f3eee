"""How soon a fresh clone's first page is usable: a new server, empty LENET_HOME and LENET_CACHE,
no full EMNIST (LENET_DATA_DIR points at an empty folder), a real browser (headless Chromium).

    .venv/bin/python scripts/first_page.py [--runs 3] [--json]

For each run it starts the app as scripts/app.sh does (`python -m ui.serve`), waits until /_stcore/health answers, then opens
Home in a browser launched beforehand and times (from the health answer) until Home shows the
active dataset and the architecture table with its script run over; then the Source page (it
loads the dataset) and the Draw page. tests/test_first_start.py asserts a loose bound with the
same functions.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_server(root: Path = ROOT, timeout: float = 120, plain: bool = False):
    """The app as scripts/app.sh starts it (`python -m ui.serve`; plain: `streamlit run app.py`), seeing
    what a fresh clone sees; yields (url, seconds from the start until /_stcore/health answered)."""
    with tempfile.TemporaryDirectory(prefix="lenet-fresh-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k not in ("LENET_DATA", "LENET_SOURCE")}
        env.update(LENET_HOME=str(tmp / "home"), LENET_CACHE=str(tmp / "cache"),
                   LENET_DATA_DIR=str(tmp / "no-emnist"), LENET_WORKERS="2")
        port = free_port()
        log = open(tmp / "streamlit.log", "w")
        t0 = time.monotonic()
        cmd = ["streamlit", "run", "app.py"] if plain else ["ui.serve"]
        proc = subprocess.Popen([sys.executable, "-m", *cmd, "--server.headless", "true",
                                 "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"streamlit did not become healthy:\n{(tmp / 'streamlit.log').read_text()}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}", time.monotonic() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()


def time_page(pg, url: str, ready: str, timeout_ms: int = 60_000) -> float:
    """Seconds from navigating to `url` until `ready` is visible and the script run is over."""
    t = time.monotonic()
    pg.goto(url)
    pg.wait_for_selector(ready, timeout=timeout_ms)
    pg.wait_for_selector(IDLE, timeout=timeout_ms)
    return time.monotonic() - t


HOME_READY = '[data-testid="stMetric"]:has-text("Dataset") >> nth=0'
TABLE_READY = 'table:has-text("free parameters")'


def measure(pg, base: str) -> dict:
    """Home (right after the health answer), then Source and Draw; which set Home says is active,
    and the pages that show an exception."""
    out, failed = {}, []
    for name, path, ready in (("home", "/", TABLE_READY), ("source", "/source", 'text="2. The active source net"'),
                              ("draw", "/draw", "canvas")):
        out[f"{name}_s"] = round(time_page(pg, base + path, ready), 2)
        if name == "home":
            pg.wait_for_selector(HOME_READY)
            out["dataset"] = pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()
        if pg.locator('[data-testid="stException"]').count():
            failed.append(path)
    return {**out, "exceptions": failed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="fresh servers to time (each starts from scratch)")
    ap.add_argument("--root", default=str(ROOT), help="the checkout to serve (to time another version)")
    ap.add_argument("--plain", action="store_true", help="start with `streamlit run app.py` (no warm-up)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        for _ in range(args.runs):
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1400, "height": 1400})
            with fresh_server(Path(args.root), plain=args.plain) as (base, health):
                rows.append({"health_s": round(health, 2), **measure(pg, base)})
            browser.close()
            print(rows[-1], file=sys.stderr, flush=True)
    out = {"runs": rows, **{f"median_{k}": statistics.median(r[k] for r in rows)
                            for k in ("health_s", "home_s", "source_s", "draw_s")}}
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items() if k != "runs"))


if __name__ == "__main__":
    main()
