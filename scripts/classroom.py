"""The classroom load harness: N browser sessions drawing while M training jobs run on one server.

    .venv/bin/python scripts/classroom.py --sessions 10 --trainings 2 --drawings 6

It starts the app (`streamlit run app.py`, loopback, a fresh LENET_HOME, synthetic data) and
drives real Chromium (Playwright, /usr/bin/chromium): real browsers run the app's own
frontend and the drawing component, so what is measured is what a class sees, including
the canvas's own behaviour. This process and its browsers run at the lowest OS priority
(nice 19), so the server comes first; their CPU use is reported too.

1. quiet: one session draws the fixed drawing (an N, one stroke) a few times: its reading;
2. M sessions each start the Experiments page's default grid (36 runs), in the background;
3. N sessions each open the Draw page and draw the fixed drawing `--drawings` times (Clear
   between drawings, or `--between reload`: a fresh page each time).

Reported (JSON on stdout, a summary on stderr): page load and drawing -> prediction latency
(median, p95, max), failed page loads (no canvas within 2 x --patience seconds; the session
then draws nothing), lost drawings (no prediction within --patience seconds), wrong reads
(another reading than when quiet), exceptions shown by the app, server CPU (its own process;
training runs in its worker processes, reported apart) and memory, and the harness's CPU.
Bounded: at most --sessions 30, --drawings 50 and --timeout seconds in all; loopback only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]
METRIC = '[data-testid="stMetricValue"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
N_STROKE = [(90, 230), (90, 50), (190, 230), (190, 50)]  # up, down the diagonal, up: an N
TICK = os.sysconf("SC_CLK_TCK")


# --- the server and /proc ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_dir: Path, home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "LENET_HOME": str(home), "LENET_DATA": "synthetic", "LENET_WORKERS": "2"}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"],
                            cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    end = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"the server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)


def _stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, CPU seconds, RSS bytes) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, rss
    except (OSError, IndexError, ValueError):
        return None


def _tree(root: int) -> set[int]:
    parents = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            s = _stat(int(p.name))
            if s:
                parents[int(p.name)] = s[0]
    tree, grew = {root}, True
    while grew:
        new = {pid for pid, ppid in parents.items() if ppid in tree and pid not in tree}
        tree |= new
        grew = bool(new)
    return tree


class Sampler(threading.Thread):
    """Once a second: CPU and memory of the server process, of its descendants (training), and of
    this harness (itself, Playwright's driver and Chromium, minus the server's tree)."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server, self.samples, self.stop = server_pid, [], threading.Event()

    def totals(self) -> dict[int, tuple[str, float, int]]:
        """pid -> (part, CPU seconds, RSS bytes) of every process of the three parts."""
        server_tree, mine = _tree(self.server), _tree(os.getpid())
        out = {}
        for pid in mine | server_tree:
            s = _stat(pid)
            if s is not None:
                out[pid] = ("server" if pid == self.server else "training" if pid in server_tree else "harness",
                            s[1], s[2])
        return out

    def run(self) -> None:
        last, t_last = self.totals(), time.monotonic()
        while not self.stop.wait(1.0):
            now, t = self.totals(), time.monotonic()
            sample = {k: {"cpu": 0.0, "rss": 0} for k in ("server", "training", "harness")}
            for pid, (part, cpu, rss) in now.items():  # a process that ended since is simply left out
                sample[part]["cpu"] += max(0.0, cpu - (last[pid][1] if pid in last else 0.0)) / (t - t_last)
                sample[part]["rss"] += rss
            self.samples.append(sample)
            last, t_last = now, t


# --- one browser session ---------------------------------------------------------------------------

async def settle(page, timeout_ms: int) -> None:
    for _ in range(2):
        await page.wait_for_selector(IDLE, timeout=timeout_ms)
        await page.wait_for_timeout(500)


async def open_draw(page, base: str, sid: str, patience: float, out: dict) -> bool:
    """Load the Draw page until its canvas shows; a load slower than 2 x patience counts as failed."""
    t = time.monotonic()
    try:
        await page.goto(f"{base}/draw?sid={sid}", wait_until="commit", timeout=patience * 2000)
        await page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=patience * 2000)
        await page.locator("canvas").last.wait_for(timeout=patience * 2000)
    except Exception:
        out["failed_loads"] += 1
        return False
    out["loads"].append(time.monotonic() - t)
    await settle(page, int(patience * 2000))
    return True


async def draw_n(page) -> None:
    canvas = page.locator("canvas").last
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    x, y = box["x"], box["y"]
    await page.mouse.move(x + N_STROKE[0][0], y + N_STROKE[0][1])
    await page.mouse.down()
    for (x0, y0), (x1, y1) in zip(N_STROKE, N_STROKE[1:]):
        for i in range(1, 13):
            await page.mouse.move(x + x0 + (x1 - x0) * i / 12, y + y0 + (y1 - y0) * i / 12)
    await page.mouse.up()


async def session(browser, base: str, drawings: int, between: str, patience: float, out: dict, deadline: float,
                  frames: list | None = None):
    """A browser session drawing `drawings` times; with `frames`, every websocket message it sends is kept."""
    ctx = await browser.new_context(viewport={"width": 1200, "height": 1000})
    page = await ctx.new_page()
    if frames is not None:
        page.on("websocket", lambda ws: ws.on("framesent", lambda data: frames.append(data)))
    sid = uuid.uuid4().hex
    try:
        for _ in range(2):
            if await open_draw(page, base, sid, patience, out):
                break
        else:
            out["skipped"] += drawings
            return
        for d in range(drawings):
            if time.monotonic() > deadline:
                out["skipped"] += drawings - d
                break
            if d:
                if between == "reload":
                    if not await open_draw(page, base, sid, patience, out):
                        out["skipped"] += drawings - d
                        break
                else:
                    await page.get_by_role("button", name="Reset canvas & history").last.click()  # the bin
                    await page.locator(METRIC).wait_for(state="detached", timeout=patience * 1000)
                    await settle(page, int(patience * 1000))
            await draw_n(page)
            t = time.monotonic()
            try:
                await page.locator(METRIC).wait_for(timeout=patience * 1000)
                out["latencies"].append(time.monotonic() - t)
                out["reads"].append((await page.locator(METRIC).inner_text()).strip())
            except Exception:
                out["lost"] += 1
                out["lost_after"].append("first drawing" if d == 0 else between)
            out["exceptions"] += await page.locator('[data-testid="stException"]').count()
            await settle(page, int(patience * 1000))
    except Exception as e:  # a session that breaks is reported, not fatal to the others
        out["errors"].append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    finally:
        await ctx.close()


async def start_grid(browser, base: str, patience: float) -> object:
    """A session that starts the Experiments page's default grid and keeps its page open (it polls)."""
    ctx = await browser.new_context(viewport={"width": 1200, "height": 1000})
    page = await ctx.new_page()
    await page.goto(f"{base}/experiments?sid={uuid.uuid4().hex}", timeout=patience * 1000)
    await page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=patience * 1000)
    await settle(page, int(patience * 1000))
    await page.get_by_role("button", name="Run the grid").click()
    await page.get_by_text("Running").or_(page.get_by_text("Queued")).first.wait_for(timeout=patience * 1000)
    return page


# --- sessions over Streamlit's own protocol (--clients protocol) -----------------------------------

def canvas_frames(frames: list) -> tuple[bytes, bytes]:
    """(a drawing, a Clear): the last rerun messages a real browser sent with the canvas's state
    holding strokes, and holding none."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    drawn = cleared = None
    for f in frames:
        if not isinstance(f, bytes):
            continue
        m = BackMsg()
        m.ParseFromString(f)
        if m.WhichOneof("type") != "rerun_script":
            continue
        for w in m.rerun_script.widget_states.widgets:
            if w.id.endswith("-draw-canvas") and w.WhichOneof("value") == "json_value":
                if '"objects":[]' in w.json_value:
                    cleared = f
                else:
                    drawn = f
    if drawn is None or cleared is None:
        raise SystemExit("the quiet browser session sent no drawing and Clear to replay")
    return drawn, cleared


def new_out() -> dict:
    return {"loads": [], "latencies": [], "reads": [], "lost": 0, "lost_after": [], "exceptions": 0,
            "errors": [], "skipped": 0, "failed_loads": 0, "first_runs": []}


async def protocol_session(base: str, assets: list[str], drawn: bytes, cleared: bytes, drawings: int,
                           patience: float, out: dict, deadline: float) -> None:
    """A new tab on the Draw page, then `drawings` times: the captured drawing, its prediction, Clear."""
    from st_protocol import Session
    s = Session(base, uuid.uuid4().hex)
    try:
        try:
            run = await s.open("draw", assets, 2 * patience)
        except Exception:
            out["failed_loads"] += 1
            out["skipped"] += drawings
            return
        out["loads"].append(run.seconds)
        out["first_runs"].append(run.first_run)
        out["exceptions"] += len(run.exceptions)
        for d in range(drawings):
            if time.monotonic() > deadline:
                out["skipped"] += drawings - d
                break
            try:
                run = await s.replay(drawn, patience)
                if not run.metrics:
                    raise RuntimeError("no prediction shown")
                out["latencies"].append(run.seconds)
                out["reads"].append(run.metrics[-1].strip())
            except Exception:
                out["lost"] += 1
                out["lost_after"].append("first drawing" if d == 0 else "clear")
                continue
            out["exceptions"] += len(run.exceptions)
            await s.replay(cleared, patience)
    except Exception as e:
        out["errors"].append(f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    finally:
        await s.close()


async def protocol_grid(base: str, assets: list[str], patience: float, stop: asyncio.Event, polls: list) -> bool:
    """A session that starts the Experiments page's default grid and watches it as an open tab does:
    the job panel's fragment reruns at the interval the server asks for. Whether it still ran at the end."""
    from st_protocol import Session
    s = Session(base, uuid.uuid4().hex)
    try:
        run = await s.open("experiments", assets, 2 * patience)
        run = await s.click(run.buttons["Run the grid"], patience)
        fragments = dict(run.auto_reruns)
        while not stop.is_set() and fragments:
            fid, interval = next(iter(fragments.items()))
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
            if stop.is_set():
                break
            run = await s.fragment(fid, patience)
            polls.append(run.seconds)
            if run.full:  # the job ended (its panel reran the page): what polls now is what that run asked for
                fragments = dict(run.auto_reruns)
        return bool(fragments)
    finally:
        await s.close()


async def protocol_async(args, base: str, sampler: "Sampler") -> dict:
    """The scenario with sessions over Streamlit's protocol; one real browser only for the quiet
    reading and to capture the drawing that the sessions replay."""
    from playwright.async_api import async_playwright

    from st_protocol import page_assets
    deadline = time.monotonic() + args.timeout
    quiet, frames = new_out(), []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        await session(browser, base, args.quiet_drawings, "clear", args.patience, quiet, deadline, frames)
        await browser.close()
    drawn, cleared = canvas_frames(frames)
    assets = page_assets(base)
    pquiet = new_out()
    await protocol_session(base, assets, drawn, cleared, args.quiet_drawings, args.patience, pquiet, deadline)
    stop, polls = asyncio.Event(), []
    grids = [asyncio.create_task(protocol_grid(base, assets, args.patience, stop, polls))
             for _ in range(args.trainings)]
    await asyncio.sleep(args.warmup)
    sampler.start()
    t0 = time.monotonic()
    outs = [new_out() for _ in range(args.sessions)]
    await asyncio.gather(*(protocol_session(base, assets, drawn, cleared, args.drawings, args.patience, o, deadline)
                           for o in outs))
    seconds = time.monotonic() - t0
    sampler.stop.set()
    stop.set()
    ended = await asyncio.gather(*grids, return_exceptions=True)
    grid_errors = [f"{type(e).__name__}: {e}" for e in ended if isinstance(e, BaseException)]
    result = report(args, pquiet, outs, seconds, sampler, [e is True for e in ended])
    result["quiet"]["browser_reads"] = quiet["reads"]
    result["quiet"]["browser_latency"] = summary(quiet["latencies"])
    result["quiet"]["browser_page_load"] = summary(quiet["loads"])
    result["first_run"] = summary([x for o in outs for x in o["first_runs"]])
    result["job_page_polls"] = summary(polls)
    result["session_errors"] += grid_errors
    result["clients"] = "protocol"
    return result


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "median": round(statistics.median(v), 3),
            "p95": round(v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))], 3), "max": round(v[-1], 3)}


async def main_async(args, base: str, sampler: Sampler) -> dict:
    from playwright.async_api import async_playwright
    deadline = time.monotonic() + args.timeout
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        quiet = new_out()
        await session(browser, base, args.quiet_drawings, args.between, args.patience, quiet, deadline)
        grids = [await start_grid(browser, base, args.patience) for _ in range(args.trainings)]
        await asyncio.sleep(args.warmup)
        sampler.start()
        t0 = time.monotonic()
        outs = [new_out() for _ in range(args.sessions)]
        await asyncio.gather(*(session(browser, base, args.drawings, args.between, args.patience, o, deadline)
                               for o in outs))
        seconds = time.monotonic() - t0
        sampler.stop.set()
        still = []
        for g in grids:
            still.append(await g.get_by_text("Done:").count() == 0)
        await browser.close()
    result = report(args, quiet, outs, seconds, sampler, still)
    result["clients"] = "browser"
    return result


def report(args, quiet: dict, outs: list[dict], seconds: float, sampler: Sampler, still: list[bool]) -> dict:
    """The figures of a run: `quiet` gives the expected reading, `outs` are the drawing sessions."""
    expected = statistics.mode(quiet["reads"]) if quiet["reads"] else None
    load = [x for o in outs for x in o["loads"]]
    lat = [x for o in outs for x in o["latencies"]]
    reads = [r for o in outs for r in o["reads"]]
    samples = sampler.samples

    def cpu(part):
        xs = [s[part]["cpu"] for s in samples]
        return {"mean": round(statistics.mean(xs), 3), "max": round(max(xs), 3)} if xs else {}
    return {
        "sessions": args.sessions, "trainings": args.trainings, "between": args.between,
        "drawings_asked": args.sessions * args.drawings, "drawings_read": len(lat), "seconds": round(seconds, 1),
        "quiet": {"read": expected, "reads": quiet["reads"], "latency": summary(quiet["latencies"]),
                  "page_load": summary(quiet["loads"])},
        "page_load": summary(load), "failed_page_loads": sum(o["failed_loads"] for o in outs),
        "drawing_to_prediction": summary(lat),
        "lost_drawings": sum(o["lost"] for o in outs),
        "lost_after": {k: sum(a == k for o in outs for a in o["lost_after"]) for k in ("first drawing", args.between)},
        "not_drawn": sum(o["skipped"] for o in outs),
        "wrong_reads": sum(r != expected for r in reads), "read_counts": {r: reads.count(r) for r in set(reads)},
        "exceptions": sum(o["exceptions"] for o in outs), "session_errors": [e for o in outs for e in o["errors"]],
        "trainings_running_at_end": sum(still),
        "cpu_cores": {"server": cpu("server"), "training": cpu("training"), "harness": cpu("harness")},
        "server_rss_mb": round(max((s["server"]["rss"] for s in samples), default=0) / 2**20, 1),
        "training_rss_mb": round(max((s["training"]["rss"] for s in samples), default=0) / 2**20, 1),
        "load_average": os.getloadavg(), "cores": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10, help="browser sessions drawing at once (at most 30)")
    ap.add_argument("--trainings", type=int, default=2, help="default grids (36 runs) training meanwhile")
    ap.add_argument("--drawings", type=int, default=6, help="drawings per session (at most 50)")
    ap.add_argument("--quiet-drawings", type=int, default=3, help="drawings of the quiet reading")
    ap.add_argument("--between", choices=("clear", "reload"), default="clear",
                    help="between two drawings: press Clear, or load the page again")
    ap.add_argument("--patience", type=float, default=30.0, help="seconds before a drawing counts as lost")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds the trainings run before the drawing starts")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds for everything (bounded)")
    ap.add_argument("--browser-nice", type=int, default=19, help="OS niceness of the harness and its browsers")
    ap.add_argument("--app-dir", type=Path, default=ROOT, help="the app to serve (another checkout, to compare)")
    ap.add_argument("--clients", choices=("protocol", "browser"), default="protocol",
                    help="sessions over Streamlit's own protocol (the server's share: default), or real Chromium "
                         "tabs on this machine (browsers and server share its cores)")
    args = ap.parse_args()
    if not (1 <= args.sessions <= 30 and 1 <= args.drawings <= 50 and 0 <= args.trainings <= 4):
        ap.error("1-30 sessions, 1-50 drawings, 0-4 trainings")
    home = Path(tempfile.mkdtemp(prefix="lenet-classroom-"))
    port = free_port()
    server = start_server(args.app_dir.resolve(), home, port)
    os.nice(args.browser_nice)  # this process, Playwright's driver and Chromium: the server comes first
    sampler = Sampler(server.pid)
    try:
        run = protocol_async if args.clients == "protocol" else main_async
        result = asyncio.run(run(args, f"http://127.0.0.1:{port}", sampler))
        log = (home / "server.log").read_text()
        result["server_tracebacks"] = log.count("Traceback")
        result["app_dir"] = str(args.app_dir.resolve())
        print(json.dumps(result, indent=1))
        d = result["drawing_to_prediction"]
        print(f"{args.sessions} sessions, {args.trainings} trainings: drawing->prediction median {d.get('median')} s, "
              f"p95 {d.get('p95')} s, max {d.get('max')} s; page load p95 {result['page_load'].get('p95')} s; "
              f"lost {result['lost_drawings']}, wrong reads {result['wrong_reads']}, "
              f"exceptions {result['exceptions']}; server CPU {result['cpu_cores']['server']}, "
              f"harness CPU {result['cpu_cores']['harness']}", file=sys.stderr)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
