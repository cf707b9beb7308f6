"""A classroom's load on one server: N browser sessions open the Mask Explorer at once and use it.

    python -m app.lib.load_benchmark --sessions 16 --uploads 8 --out load.json   # needs /usr/bin/chromium

Starts ``streamlit run app/Home.py`` on a free port (:func:`.browser_benchmark.start_server`), then drives one
headless Chromium (Playwright's Python package with the system browser, never ``playwright install``) with N
browser contexts — N independent sessions, as N students' browsers would be — all acting at once. Each session

1. opens the page: *first paint* is ``goto`` → the script has finished and every card shows λ (the first
   session of a cold server also computes every card);
2. with ``--uploads K``, K of the sessions upload a 50-megapixel PNG (one colour, a small file: what a careless
   or hostile user can send) as image B: *upload* is the file chosen → the page settled again;
3. picks another example for image A (every session the same, as a class told "take the coffee cup"):
   *pair change* is the option clicked → every card redrawn for the new pair;
4. switches on the focus view: *focus view* is the toggle clicked → its panels drawn.

It reports p50 / p95 / max per action, how many sessions were served (every action done, no exception box on
the page), the peak RSS of the server process and its children (sampled with psutil every 0.2 s) and the RSS
some seconds after every session closed, with the load average (``os.getloadavg``) at the start and the end.
The browsers run on the same cores as the server, so on a small machine the figures are pessimistic. Printed
figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .browser_benchmark import CHROMIUM, CHROMIUM_ARGS, ROOT, SETTLED, free_port, start_server

ACTIONS = ("first paint", "upload", "pair change", "focus view")
DEFAULT_LAM = "0.60"
BOMB_SIDE = 7100
"""The uploaded PNG is BOMB_SIDE × BOMB_SIDE RGB: 50.4 megapixels (151 MB of pixels) in a ~150 KB file."""
MAX_SESSIONS = 64
SERVER_OPTIONS = ("--server.fileWatcherType", "none")
"""As a class's server would run: no reruns or "source changed" prompts when a file of the app is edited."""
RSS_INTERVAL_S = 0.2

RUN_NUMBER = r"""() => {
    const m = /run (\d+) · page drawn in/.exec(document.querySelector('[data-testid="stSidebar"]')?.innerText || '');
    return m ? Number(m[1]) : 0;
}"""


def newer_run(then: str) -> str:
    """A page predicate (argument: a run number): the script ran again after that run and has finished, nothing
    is stale, and the JS expression ``then`` holds."""
    return ("""(after) => {
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
    if (document.querySelector('[data-stale="true"]')) return false;
    const m = /run (\\d+) · page drawn in/.exec(document.querySelector('[data-testid="stSidebar"]')?.innerText || '');
    return m !== null && Number(m[1]) > after && (""" + then + "); }")


CARDS_SHOW_LAM = f"""(() => {{ const c = [...document.querySelectorAll('[class*="st-key-card-"]')]
    .filter(c => /λ requested/.test(c.innerText));
    return c.length > 0 && c.every(c => c.innerText.includes('λ requested {DEFAULT_LAM}')); }})()"""
FOCUS_DRAWN = """(document.querySelectorAll('[class*="st-key-focus-"] img').length >= 4
    && !document.querySelector('.st-key-cards'))"""
"""The focus view's panels (two methods by default, each a mixed image and a mask) replaced the grid."""
SERVER_SECONDS = r"""() => {
    const m = /page drawn in ([0-9.]+) s \(CPU ([0-9.]+) s\)/.exec(
        document.querySelector('[data-testid="stSidebar"]')?.innerText || '');
    return m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
}"""
EXCEPTION = '[data-testid="stException"]'
PAGE_STATE = """() => ({run: (/run (\\d+) · page drawn/.exec(document.querySelector('[data-testid="stSidebar"]')?.innerText || '')
    || [0, 0])[1], running: !!document.querySelector('[data-testid="stStatusWidget"]'),
    stale: document.querySelectorAll('[data-stale="true"]').length,
    cards: document.querySelectorAll('[class*="st-key-card-"]').length})"""
"""What a failed session's page showed (for the report)."""


class ArgumentError(SystemExit):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the usage block
        raise ArgumentError(f"load_benchmark: {message}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, checked; a bad value raises :class:`ArgumentError` (a SystemExit) with one line."""
    parser = _Parser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=16, help=f"concurrent browser sessions (1–{MAX_SESSIONS})")
    parser.add_argument("--uploads", type=int, default=0, help="how many of them upload a 50-megapixel PNG")
    parser.add_argument("--pair", default="coffee cup (photo)", help="the example image A changes to")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds an action may take before it fails")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="seconds after the last session closed before the RSS is read again")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--log", type=Path, help="keep the server's output in this file")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= MAX_SESSIONS:
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}, got {args.sessions}")
    if not 0 <= args.uploads <= args.sessions:
        parser.error(f"--uploads must be between 0 and --sessions ({args.sessions}), got {args.uploads}")
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if not (math.isfinite(args.settle) and args.settle >= 0):
        parser.error(f"--settle must be zero or more seconds, got {args.settle}")
    if args.width < 320 or args.height < 240:
        parser.error(f"--width/--height must be at least 320 × 240, got {args.width} × {args.height}")
    if args.out is not None and not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: folder {args.out.parent} does not exist")
    return args


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(timings: dict[str, list[float]], failures: dict[str, int],
              server: dict[str, list[tuple[float, float]]] | None = None) -> list[dict]:
    """One row per action that was tried: done, failed, p50, p95 and max seconds of those done, and the median
    wall and CPU seconds of the script run that ended each (``server``, as the page reports it; NaN without)."""
    rows = []
    for action in ACTIONS:
        done, failed = timings.get(action, []), failures.get(action, 0)
        runs = (server or {}).get(action, [])
        if done or failed:
            rows.append({"action": action, "done": len(done), "failed": failed, "p50": percentile(done, 50),
                         "p95": percentile(done, 95), "max": max(done) if done else math.nan,
                         "run_p50": percentile([wall for wall, _ in runs], 50),
                         "run_cpu_p50": percentile([cpu for _, cpu in runs], 50)})
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows of :func:`summarize` as a fixed-width table (seconds)."""
    lines = [f"{'action':<12} {'done':>5} {'failed':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7}   "
             f"{'script run p50 s (CPU)':>22}"]
    for row in rows:
        lines.append(f"{row['action']:<12} {row['done']:>5} {row['failed']:>6} {row['p50']:>7.2f} "
                     f"{row['p95']:>7.2f} {row['max']:>7.2f}   {row['run_p50']:>14.2f} ({row['run_cpu_p50']:.2f})")
    return "\n".join(lines)


def bomb_png(folder: Path) -> Path:
    """A BOMB_SIDE² single-colour RGB PNG in ``folder`` (written in row bands: never the full image in memory)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes((200, 60, 40)) * BOMB_SIDE  # filter byte "none", then the pixels
    squeeze = zlib.compressobj(9)
    body = b"".join(squeeze.compress(row * 100) for _ in range(BOMB_SIDE // 100))
    body += squeeze.compress(row * (BOMB_SIDE % 100)) + squeeze.flush()
    path = folder / "fifty_megapixels.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", BOMB_SIDE, BOMB_SIDE, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


class RssSampler(threading.Thread):
    """Every :data:`RSS_INTERVAL_S`: the resident memory of the server process and its children (the peak is
    kept), and the CPU seconds of the server's and of the browser's processes (the browser: this process's
    children other than the server; a process's last reading counts once it has ended)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.peak = 0
        self.cpu: dict[str, dict[int, float]] = {"server": {}, "browser": {}}
        self.stopped = threading.Event()

    def _tree(self, root) -> list:
        import psutil

        try:
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return [root]

    def rss(self) -> int:
        import psutil

        total = 0
        for process in self._tree(self.process):
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _read_cpu(self) -> None:
        import psutil

        server = {process.pid for process in self._tree(self.process)}
        browser = [p for p in self._tree(psutil.Process()) if p.pid not in server and p.pid != os.getpid()]
        for role, processes in (("server", self._tree(self.process)), ("browser", browser)):
            for process in processes:
                try:
                    times = process.cpu_times()
                    self.cpu[role][process.pid] = times.user + times.system
                except psutil.Error:
                    pass

    def cpu_seconds(self, role: str) -> float:
        return sum(self.cpu[role].values())

    def run(self) -> None:
        while not self.stopped.wait(RSS_INTERVAL_S):
            self.peak = max(self.peak, self.rss())
            self._read_cpu()


@dataclass
class Session:
    index: int
    uploads: bool
    timings: dict[str, float] = field(default_factory=dict)
    server: dict[str, tuple[float, float]] = field(default_factory=dict)  # the run's own (wall, CPU) seconds
    failed: str | None = None  # the action that failed, and why
    exception_box: bool = False


async def _act(page, action: str, session: Session, timeout_ms: float, do, then: str) -> None:
    """Run ``do()`` and wait for a newer run of the script that ends with ``then`` true; time it."""
    after = await page.evaluate(RUN_NUMBER)
    started = time.perf_counter()
    await do()
    await page.wait_for_function(newer_run(then), arg=after, timeout=timeout_ms, polling=100)
    session.timings[action] = time.perf_counter() - started
    session.server[action] = await server_seconds(page)


async def server_seconds(page) -> tuple[float, float]:
    """(wall, CPU) seconds of the page's last script run, as its sidebar reports them."""
    return tuple(await page.evaluate(SERVER_SECONDS))


async def run_session(browser, url: str, session: Session, args, bomb: Path | None) -> None:
    timeout_ms = args.timeout * 1000
    context = await browser.new_context(viewport={"width": args.width, "height": args.height})
    action, page = ACTIONS[0], None
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout_ms)
        started = time.perf_counter()
        await page.goto(url, timeout=timeout_ms)
        await page.wait_for_function(SETTLED, arg=DEFAULT_LAM, timeout=timeout_ms, polling=100)
        session.timings[action] = time.perf_counter() - started
        session.server[action] = await server_seconds(page)
        if session.uploads:
            action = "upload"
            await _act(page, action, session, timeout_ms,
                       lambda: page.locator(".st-key-upload_b input[type=file]").set_input_files(str(bomb)),
                       "document.querySelector('.st-key-upload_b').innerText.includes('fifty_megapixels')")
        action = "pair change"

        async def pick() -> None:
            await page.get_by_role("combobox", name="Image A").click()
            await page.get_by_role("option", name=args.pair, exact=True).click()

        await _act(page, action, session, timeout_ms, pick, CARDS_SHOW_LAM)
        action = "focus view"
        await _act(page, action, session, timeout_ms, lambda: page.locator(".st-key-focus label").click(),
                   FOCUS_DRAWN)
        session.exception_box = await page.locator(EXCEPTION).count() > 0
    except Exception as error:  # noqa: BLE001 — a session that fails is counted, the others go on
        try:
            state = await page.evaluate(PAGE_STATE)
        except Exception:  # noqa: BLE001 — the page itself may be gone
            state = "page unreadable"
        session.failed = f"{action}: {type(error).__name__}: {str(error).splitlines()[0][:120]}; page: {state}"
    finally:
        await context.close()


async def run_sessions(url: str, args, bomb: Path | None) -> list[Session]:
    from playwright.async_api import async_playwright

    sessions = [Session(index, index < args.uploads) for index in range(args.sessions)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(run_session(browser, url, session, args, bomb) for session in sessions))
        finally:
            await browser.close()
    return sessions


def collect(sessions: list[Session]) -> tuple[dict[str, list[float]], dict[str, int],
                                             dict[str, list[tuple[float, float]]]]:
    """Per action: the seconds of every session that did it, how many failed at it, and the script runs' own
    (wall, CPU) seconds."""
    timings: dict[str, list[float]] = {action: [] for action in ACTIONS}
    failures: dict[str, int] = {action: 0 for action in ACTIONS}
    server: dict[str, list[tuple[float, float]]] = {action: [] for action in ACTIONS}
    for session in sessions:
        for action, seconds in session.timings.items():
            timings[action].append(seconds)
        for action, run in session.server.items():
            server[action].append(run)
        if session.failed:
            failures[session.failed.split(":")[0]] += 1
    return timings, failures, server


def commit() -> str:
    """The checked-out commit, marked "+changes" when tracked files of app/ or msda/ differ from it."""
    def git(*words: str) -> str:
        return subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "app", "msda") else "")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _finite(value):
    """``value`` with NaN (a percentile of no timing) as None, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_finite(inner) for inner in value]
    return value


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(argv)
    except ArgumentError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"load_benchmark: {CHROMIUM} not found (apt-get install chromium)")
    load_start = _load()
    print(f"load average at start {load_start} (1, 5, 15 min) on {os.cpu_count()} cores; commit {commit()}")
    with tempfile.TemporaryDirectory() as folder:
        bomb = bomb_png(Path(folder)) if args.uploads else None
        port = free_port()
        with open(args.log or Path(folder) / "streamlit.log", "w") as log:
            server = start_server(port, log, SERVER_OPTIONS)
            try:
                sampler = RssSampler(server.pid)
                idle_rss = sampler.rss()
                sampler._read_cpu()
                cpu_before = sampler.cpu_seconds("server")
                sampler.start()
                started = time.perf_counter()
                sessions = asyncio.run(run_sessions(f"http://localhost:{port}", args, bomb))
                wall = time.perf_counter() - started
                cpu = {role: sampler.cpu_seconds(role) for role in ("server", "browser")}
                cpu["server"] -= cpu_before
                time.sleep(args.settle)
                sampler.stopped.set()
                sampler.join()
                after_rss = sampler.rss()
            finally:
                server.terminate()
                server.wait(timeout=20)
    timings, failures, server = collect(sessions)
    rows = summarize(timings, failures, server)
    served = sum(1 for s in sessions if s.failed is None and not s.exception_box)
    load_end = _load()
    mb = 2**20
    print(f"{args.sessions} sessions ({args.uploads} uploading a {BOMB_SIDE} × {BOMB_SIDE} PNG), one Chromium, "
          f"{args.width} × {args.height}; all done in {wall:.0f} s")
    print(format_table(rows))
    print(f"CPU seconds while the sessions ran: server {cpu['server']:.0f}, browser {cpu['browser']:.0f} "
          f"({os.cpu_count()} cores × {wall:.0f} s = {os.cpu_count() * wall:.0f})")
    print(f"sessions served {served}/{args.sessions}; server RSS idle {idle_rss / mb:.0f} MB, peak "
          f"{sampler.peak / mb:.0f} MB, {args.settle:g} s after every session closed {after_rss / mb:.0f} MB")
    for session in sessions:
        if session.failed or session.exception_box:
            print(f"  session {session.index}: {session.failed or 'an exception box on the page'}")
    print(f"load average at end {load_end}")
    if args.out is not None:
        report = {"commit": commit(), "sessions": args.sessions, "uploads": args.uploads, "pair": args.pair,
                  "cores": os.cpu_count(), "load_start": load_start, "load_end": load_end, "wall_s": wall,
                  "served": served, "rows": rows, "cpu_s": cpu, "timings": timings,
                  "failures": [s.failed for s in sessions if s.failed],
                  "rss_idle_mb": idle_rss / mb, "rss_peak_mb": sampler.peak / mb, "rss_after_close_mb": after_rss / mb}
        args.out.write_text(json.dumps(_finite(report), indent=1, allow_nan=False))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
