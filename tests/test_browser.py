"""The app in a real browser: `streamlit run app/Home.py` driven by Debian's Chromium through Playwright's
Python package. On the Mask Explorer: upload two images, move the λ slider, check every method card and that
no exception box appears, and save a screenshot. Then, in the same browser session and with a folder of tiny
checkpoints, each analysis page once (a tiny robustness run included): no exception box, one screenshot each.

Needs /usr/bin/chromium (``apt-get install -y chromium``) and ``pip install playwright`` — never
``playwright install``: the test uses the system browser. It fails, rather than skips, when either is missing,
because CI installs both.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import test_app_checkpoint_files as checkpoints
import test_app_files as files

import msda

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
SCREENSHOT_COPY = Path("/tmp/msda_app_screenshot.png")
PAGE_SCREENSHOT = "/tmp/msda_page_{name}.png"
START_TIMEOUT_S = 120
RENDER_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    checkpoints.write_folder(tmp_path / "checkpoints")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.headless", "true",
         "--server.port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, OMP_NUM_THREADS="1", MSDA_CHECKPOINTS=str(tmp_path / "checkpoints")))
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not come up on {url}:\n{(tmp_path / 'streamlit.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_until_idle(page, selector: str = ".st-key-card-miamix") -> None:
    """Wait until the script has finished (Streamlit's running indicator is gone) and the page has settled."""
    page.wait_for_selector(selector, timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_timeout(500)


@pytest.mark.browser
def test_upload_pair_move_lambda_and_see_every_method(app_url, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: `pip install playwright` (the browser is the system one)")

    image_a, image_b = tmp_path / "stripes.png", tmp_path / "blue.png"
    image_a.write_bytes(files.split_png((230, 160, 20), (20, 120, 60), 120, 80))
    image_b.write_bytes(files.solid_png((30, 60, 200), 64, 64))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(app_url)
            wait_until_idle(page)

            page.locator(".st-key-upload_a input[type=file]").set_input_files(str(image_a))
            page.locator(".st-key-upload_b input[type=file]").set_input_files(str(image_b))
            page.get_by_text("upload: stripes.png").wait_for(timeout=RENDER_TIMEOUT_MS)
            page.get_by_text("upload: blue.png").wait_for(timeout=RENDER_TIMEOUT_MS)
            wait_until_idle(page)
            cutmix = page.locator(".st-key-card-cutmix")
            assert "stripes" in cutmix.inner_text() and "blue" in cutmix.inner_text()

            thumb = page.locator(".st-key-lam input[type=range]")
            before = cutmix.inner_text()
            started = time.perf_counter()
            thumb.press("PageDown")  # one move of a tenth of the range: λ 0.60 → 0.50
            cutmix.get_by_text("λ requested 0.50").wait_for(timeout=RENDER_TIMEOUT_MS)
            print(f"\nλ slider moved → cutmix card updated in the browser in {time.perf_counter() - started:.2f} s")
            assert cutmix.inner_text() != before
            wait_until_idle(page)

            for method in msda.METHODS:
                card = page.locator(f".st-key-card-{method}")
                assert card.count() == 1, method
                assert msda.methods_info()[method].title in card.inner_text(), method
            assert page.get_by_text("MiAMix, stage by stage").count() == 1
            assert page.locator("[data-testid=stException]").count() == 0
            assert page.locator("[data-testid=stAlertContentError]").count() == 0

            page.set_viewport_size({"width": 1600, "height": 7000})  # the app scrolls inside its own pane
            page.wait_for_timeout(1500)
            screenshot = tmp_path / "mask_explorer.png"
            page.screenshot(path=str(screenshot))
            shutil.copyfile(screenshot, SCREENSHOT_COPY)
            page.set_viewport_size({"width": 1600, "height": 1000})
            visit_analysis_pages(page, tmp_path)
        finally:
            browser.close()


def visit_analysis_pages(page, tmp_path: Path) -> None:
    """Each analysis page once through the sidebar's navigation (the same browser session): it renders its
    content, shows no exception box and no error, and gets a screenshot."""
    for link, ready, name, height in (("CAM and Occlusion", ".st-key-model-2", "cam", 2100),
                                      ("Robustness", ".st-key-rob-start", "robustness", 1900),
                                      ("HardMix", ".st-key-hm-mix_grid", "hardmix", 1300)):
        started = time.perf_counter()
        page.get_by_role("link", name=link).click()
        wait_until_idle(page, ready)
        if name == "robustness":  # a tiny run: 8 images per cell, then wait for its results
            images = page.locator(".st-key-rob-n input")
            images.fill("8")
            images.press("Enter")
            wait_until_idle(page, ready)
            page.locator(".st-key-rob-start button").click()
            wait_until_idle(page, ".st-key-rob-download_json")
        print(f"{link}: drawn in the browser in {time.perf_counter() - started:.1f} s")
        assert page.locator("[data-testid=stException]").count() == 0, link
        assert page.locator("[data-testid=stAlertContentError]").count() == 0, link
        page.set_viewport_size({"width": 1600, "height": height})
        page.wait_for_timeout(1500)
        screenshot = tmp_path / f"{name}.png"
        page.screenshot(path=str(screenshot))
        shutil.copyfile(screenshot, PAGE_SCREENSHOT.format(name=name))
        page.set_viewport_size({"width": 1600, "height": 1000})
