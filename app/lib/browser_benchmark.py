"""The Mask Explorer's λ round trip in a real browser: λ slider released → every card settled.

    python -m app.lib.browser_benchmark            # from the repository root; needs /usr/bin/chromium

Starts ``streamlit run app/Home.py`` on a free port, opens it in headless Chromium (Playwright's Python package
driving the system browser, never ``playwright install``) at 1440 × 900, waits for the page, then moves the
requested-λ slider one step at a time with the keyboard (each move a λ not seen before, so nothing comes from
the cache). For each move it reports

* end to end: key released → the script has finished, no element is stale, and every card that applies λ
  shows the new value (then two animation frames, so the browser has painted);
* server side: the script's own run time, which the page prints in the sidebar ("page drawn in … s (CPU … s)"),
  wall-clock and the CPU time of its thread (on a loaded machine the wall-clock time is the larger).

Then it drags the slider with the mouse (the grid's λ ladders scrub every card in the browser, app/lib/grid.js)
and reports

* client-side repaint: slider moved → every card's mask, mixed image, λ line and label bar replaced → the next
  animation frame (measured in the page, median over the drag's moves);
* settled round trip after release: mouse released → the script has rerun at the released λ and every card
  that applies λ shows it.

Printed figures, not a test: on a shared 2-core machine they move with the load.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
TIMEOUT_MS = 300_000

SETTLED = """(lam) => {
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
    if (document.querySelector('[data-stale="true"]')) return false;
    const drawn = document.querySelector('[data-testid="stSidebar"]')?.innerText || '';
    if (!/page drawn in/.test(drawn)) return false;
    const cards = [...document.querySelectorAll('[class*="st-key-card-"]')];
    const marks = cards.filter(c => /λ requested/.test(c.innerText));
    return marks.length > 0 && marks.every(c => c.innerText.includes('λ requested ' + lam));
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, log, options: tuple[str, ...] = ()) -> subprocess.Popen:
    """``streamlit run app/Home.py`` on ``port`` (one torch thread, output to ``log``, further command-line
    ``options`` appended), once it answers its health check."""
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.headless", "true",
         "--server.port", str(port), *options],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("streamlit did not come up")


def server_seconds(page) -> tuple[float, float | None]:
    """(wall, CPU) seconds of the last script run as the page reports them (CPU None on pages without it)."""
    text = page.locator('[data-testid="stSidebar"]').inner_text()
    wall = float(re.search(r"page drawn in ([0-9.]+) s", text).group(1))
    cpu = re.search(r"\(CPU ([0-9.]+) s\)", text)
    return wall, float(cpu.group(1)) if cpu else None


def wait_settled(page, lam: str) -> None:
    page.wait_for_function(SETTLED, arg=lam, timeout=TIMEOUT_MS, polling="raf")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    with open(os.devnull, "w") as log:
        server = start_server(port, log)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.goto(f"http://localhost:{port}")
                wait_settled(page, "0.60")
                thumb = page.locator('.st-key-lam input[type=range]')
                lam = 60
                ends, servers = [], []
                for move in range(args.moves + 1):  # the first move warms up
                    lam -= 1
                    thumb.focus()
                    started = time.perf_counter()
                    thumb.press("ArrowLeft")
                    wait_settled(page, f"{lam / 100:.2f}")
                    took = time.perf_counter() - started
                    if move:
                        ends.append(took)
                        servers.append(server_seconds(page))
                repaints, releases = scrub(page, args.moves)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"Mask Explorer λ round trip, headless Chromium {args.width} × {args.height}, "
          f"median of {len(ends)} moves: end to end {statistics.median(ends):.2f} s "
          f"(min {min(ends):.2f}, max {max(ends):.2f}); server side {statistics.median(w for w, _ in servers):.2f} s"
          + (f" (CPU {statistics.median(c for _, c in servers):.2f} s)" if servers[0][1] is not None else "")
          + f"; load average {os.getloadavg()[0]:.1f}")
    if repaints:
        print(f"grid λ drag: client-side repaint median {statistics.median(repaints):.0f} ms "
              f"(max {max(repaints):.0f}, "
              f"{len(repaints)} moves); settled round trip after release median {statistics.median(releases):.2f} s "
              f"(min {min(releases):.2f}, max {max(releases):.2f}, {len(releases)} releases); "
              f"load average {os.getloadavg()[0]:.1f}")


RELEASED = """(lam) => !document.querySelector('[data-testid="stStatusWidget"]') &&
    [...document.querySelectorAll('.msda-lamline[data-lam]')].every(
        el => el.dataset.lam === lam && el.innerText.includes('λ requested ' + lam))"""


def scrub(page, drags: int) -> tuple[list[float], list[float]]:
    """Drag the grid's λ slider (every card follows in the browser), then release: (repaint ms of every move,
    seconds from each release to the settled page)."""
    page.wait_for_function("() => window.msdaGrid && window.msdaGrid.ladders.size > 0", timeout=TIMEOUT_MS)
    repaints, releases = [], []
    for drag in range(drags):
        thumb = page.locator(".st-key-lam input[type=range]").locator("xpath=../..")
        thumb.scroll_into_view_if_needed()
        grip = thumb.bounding_box()
        rail = page.locator(".st-key-lam [role=group]").bounding_box()
        page.evaluate("() => { window.msdaGrid.timings = []; }")
        page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
        page.mouse.down()
        target = 0.15 + 0.7 * ((drag * 0.37) % 1)  # a new place each drag
        page.mouse.move(rail["x"] + rail["width"] * target, grip["y"] + grip["height"] / 2, steps=8)
        page.wait_for_timeout(200)
        repaints.extend(page.evaluate("() => window.msdaGrid.timings"))
        value = page.locator(".st-key-lam input[type=range]").get_attribute("aria-valuetext")
        started = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(RELEASED, arg=value, timeout=TIMEOUT_MS, polling="raf")
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        releases.append(time.perf_counter() - started)
    return repaints, releases


if __name__ == "__main__":
    main()
