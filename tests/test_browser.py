"""The app in a real browser: `streamlit run app/Home.py` driven by Debian's Chromium through Playwright's
Python package. On the Mask Explorer: upload two images, move the λ slider, check every method card and that
no exception box appears, and save a screenshot. Then, in the same browser session and with a folder of tiny
checkpoints, each analysis page once (a tiny robustness run included): no exception box, one screenshot each.

The explorer's layout is checked at 1440 × 900 and 1024 × 768 with the sidebar open: no element of a card
is wider than the card or scrolls sideways, every formula is visible in full, pictures are at least 150 px;
then the presentation mode and the focus view, whose λ sweep is moved in the browser to its middle frame.

Needs /usr/bin/chromium (``apt-get install -y chromium``) and ``pip install playwright`` — never
``playwright install``: the test uses the system browser. Without Chromium the tests are skipped with a
one-line reason, unless ``CI`` is set (CI installs it, see .ci/run): there they fail.
"""

from __future__ import annotations

import os
import re
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
RENDER_TIMEOUT_MS = 300_000  # the first run also computes every card's λ ladder; a loaded 2-core machine takes minutes
SKIP_REASON = f"Chromium not found at {CHROMIUM}: apt-get install chromium to run the browser tests"
SHOTS = Path("/tmp")
"""Screenshots are copied here as msda_explorer_*.png for a person to look at."""

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(SKIP_REASON, allow_module_level=True)


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


def playwright_or_fail():
    if not CHROMIUM.exists():  # only reached with CI set
        pytest.fail(f"CI is set but {SKIP_REASON}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: `pip install playwright` (the browser is the system one)")
    return sync_playwright


def wait_until_idle(page, selector: str = ".st-key-card-miamix") -> None:
    """Wait until the script has finished (Streamlit's running indicator is gone) and the page has settled."""
    page.wait_for_selector(selector, timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_timeout(500)


@pytest.mark.browser
def test_upload_pair_move_lambda_and_see_every_method(app_url, tmp_path):
    sync_playwright = playwright_or_fail()

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
            thumb.focus()
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


LAYOUT_PROBLEMS = """() => {
    const problems = [];
    const name = el => (el.className.toString().match(/st-key-[\\w-]+/) || [el.tagName])[0];
    for (const card of document.querySelectorAll('[class*="st-key-card-"], [class*="st-key-focus-"]')) {
        const box = card.getBoundingClientRect();
        for (const el of card.querySelectorAll('*')) {
            // plotly and KaTeX clip their own SVG; the chart itself is checked as a whole
            if (!el.checkVisibility() || el.closest('.katex-mathml') || el.closest('svg')) continue;
            const rect = el.getBoundingClientRect();
            if (rect.width === 0) continue;
            if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 &&
                    !['visible', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX))
                problems.push(`${name(card)}: ${el.tagName}.${el.className} scrolls sideways`);
            if (rect.right > box.right + 1 || rect.left < box.left - 1)
                problems.push(`${name(card)}: ${el.tagName}.${el.className} sticks out of its card`);
        }
        for (const formula of card.querySelectorAll('.katex')) {
            const rect = formula.getBoundingClientRect();
            if (rect.right > box.right + 1 || formula.scrollWidth > Math.ceil(rect.width) + 1)
                problems.push(`${name(card)}: a formula is cut off`);
        }
    }
    const pictures = [...document.querySelectorAll('[class*="st-key-card-"] .msda-panel img')];
    for (const img of pictures)
        if (img.getBoundingClientRect().width < 150) problems.push(`a picture is ${img.getBoundingClientRect().width} px`);
    if (pictures.length < 28) problems.push(`only ${pictures.length} card pictures`);
    return problems;
}"""


def shoot(page, path: Path, height: int) -> None:
    """A screenshot of the whole page (the app scrolls inside its own pane: make the window tall)."""
    width = page.viewport_size["width"]
    old = page.viewport_size["height"]
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(1200)
    page.screenshot(path=str(path))
    shutil.copyfile(path, SHOTS / f"msda_explorer_{path.name}")
    page.set_viewport_size({"width": width, "height": old})


@pytest.mark.browser
def test_cards_fit_at_1440x900_and_1024x768_presentation_and_focus_view(app_url, tmp_path):
    sync_playwright = playwright_or_fail()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width, height in ((1440, 900), (1024, 768)):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(app_url)
                wait_until_idle(page)
                assert page.locator("[data-testid=stSidebar]").is_visible()
                page.screenshot(path=str(tmp_path / f"{width}x{height}.png"))
                shutil.copyfile(tmp_path / f"{width}x{height}.png", SHOTS / f"msda_explorer_{width}x{height}.png")
                problems = page.evaluate(LAYOUT_PROBLEMS)
                assert not problems, f"{width} × {height}: {problems[:10]}"
                if width == 1024:
                    page.locator(".st-key-presentation label").click()
                    wait_until_idle(page)
                    assert not page.locator("[data-testid=stSidebar]").is_visible()
                    assert page.locator(".st-key-top-bar .st-key-lam").is_visible()
                    assert not page.evaluate(LAYOUT_PROBLEMS)
                    shoot(page, tmp_path / "presentation.png", 1400)
                    page.locator(".st-key-presentation label").click()
                    wait_until_idle(page)
                page.close()
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(app_url)
            wait_until_idle(page)
            page.locator(".st-key-focus label").click()
            wait_until_idle(page, ".st-key-focus-gmix .js-plotly-plot")
            assert page.locator("[data-testid=stException]").count() == 0
            sweep = page.locator(".st-key-focus-gmix .js-plotly-plot").first
            before = sweep.locator("image").nth(1).get_attribute("href")
            sweep.locator(".slider-rail-rect").first.scroll_into_view_if_needed()
            rail = sweep.locator(".slider-rail-rect").first.bounding_box()
            grip = sweep.locator(".slider-grip-rect").first.bounding_box()
            started = time.perf_counter()
            page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
            page.mouse.down()  # drag the sweep's grip from the card's λ (0.60) to a quarter of the rail
            page.mouse.move(rail["x"] + rail["width"] * 0.25, grip["y"] + grip["height"] / 2, steps=5)
            page.mouse.up()
            page.wait_for_function("([el, before]) => el.querySelectorAll('image')[1].getAttribute('href') !== before",
                                   arg=[sweep.element_handle(), before], timeout=5000)
            print(f"\nfocus view: the λ sweep's frame changed in the browser in {time.perf_counter() - started:.2f} s")
            assert page.locator("[data-testid=stStatusWidget]").count() == 0  # no round trip to the server
            assert re.search(r"λ = 0\.(?:20|25|30) → effective", sweep.inner_text())
            shoot(page, tmp_path / "focus_mid_sweep.png", 2100)
        finally:
            browser.close()


def runs(page) -> int:
    """How many times the page's script has run (the sidebar says "run N")."""
    return int(re.search(r"run (\d+)", page.locator("[data-testid=stSidebar]").inner_text()).group(1))


def wait_for_ladders(page) -> None:
    wait_until_idle(page)
    page.wait_for_selector(".msda-ladder", state="attached", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_function(r"() => /run \d+/.test(document.querySelector('[data-testid=stSidebar]').innerText)",
                           timeout=RENDER_TIMEOUT_MS)
    wait_until_idle(page)
    page.wait_for_function("() => window.msdaGrid && window.msdaGrid.ladders.size > 0", timeout=RENDER_TIMEOUT_MS)


MASKS = ("() => [...document.querySelectorAll('[class*=st-key-card-]')]"
         ".filter(c => c.querySelector('.msda-lamline[data-ladder]')).map(c => c.querySelector('img[alt=mask]').src)")


@pytest.mark.browser
def test_dragging_lambda_scrubs_every_card_in_the_browser_and_a_click_places_the_centre(app_url):
    sync_playwright = playwright_or_fail()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(app_url)
            wait_for_ladders(page)
            ran = runs(page)
            before = page.evaluate(MASKS)
            assert len(before) >= 10  # every card whose mask λ shapes
            thumb = page.locator(".st-key-lam input[type=range]").locator("xpath=../..")
            thumb.scroll_into_view_if_needed()
            grip = thumb.bounding_box()
            rail = page.locator(".st-key-lam [role=group]").bounding_box()
            page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
            page.mouse.down()
            page.mouse.move(rail["x"] + rail["width"] * 0.3, grip["y"] + grip["height"] / 2, steps=6)
            page.wait_for_timeout(300)
            during = page.evaluate(MASKS)
            assert all(a != b for a, b in zip(before, during)), "a card's mask did not follow the slider"
            assert runs(page) == ran and page.locator("[data-testid=stStatusWidget]").count() == 0  # no rerun
            timings = page.evaluate("() => window.msdaGrid.timings")
            print(f"\ngrid λ scrub: repaint {sorted(timings)[len(timings) // 2]:.0f} ms "
                  f"(median of {len(timings)} moves)")
            shown = page.locator(".st-key-card-cutmix .msda-lamline").inner_text()
            page.mouse.up()
            value = page.locator(".st-key-lam input[type=range]").get_attribute("aria-valuetext")
            page.wait_for_function("(lam) => [...document.querySelectorAll('.msda-lamline[data-lam]')].every("
                                   "el => el.dataset.lam === lam && el.innerText.includes('λ requested ' + lam))",
                                   arg=value, timeout=RENDER_TIMEOUT_MS)
            wait_until_idle(page)
            assert runs(page) == ran + 1  # the released value went to the server once
            assert f"λ requested {value}" in page.locator(".st-key-card-cutmix").inner_text()
            assert re.search(r"λ requested 0\.[0-9]{2}", shown)

            mask = page.locator(".st-key-card-cutmix img[alt=mask]")
            mask.scroll_into_view_if_needed()
            box = mask.bounding_box()
            page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
            page.locator(".st-key-card-cutmix").get_by_text(re.compile(r"centre \(0\.2[0-9], 0\.7[0-9]\) \(pinned\)")) \
                .wait_for(timeout=RENDER_TIMEOUT_MS)
            assert page.locator("[data-testid=stException]").count() == 0
        finally:
            browser.close()
