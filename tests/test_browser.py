"""The dashboard in a real browser: streamlit run on a free port, driven by Playwright in Debian's
headless Chromium. Timings go to test-artifacts/browser_timings.json with the screenshots (they
are reported, never asserted: this machine is too noisy for timed assertions)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import PHOTOS, ROOT, needs_weights

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
ON_CI = os.environ.get("CI") == "true"

pytestmark = [
    needs_weights,
    pytest.mark.skipif(not ON_CI and not os.path.exists(CHROMIUM), reason="no chromium here (CI installs it)"),
]


@pytest.fixture(scope="module")
def server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start")
    yield url, started
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )
        yield chromium
        chromium.close()


def _overlay(page):
    return page.locator('[data-testid="stImage"]').filter(has_text=" for ").locator("img").first


def _wait_for_new_overlay(page, old_src, timeout=60_000):
    page.wait_for_function(
        """old => { const img = [...document.querySelectorAll('[data-testid="stImage"]')]
                      .find(e => e.innerText.includes(' for '));
                    const src = img && img.querySelector('img').src;
                    return src && src !== old && img.querySelector('img').complete; }""",
        arg=old_src, timeout=timeout, polling="raf",
    )
    return time.perf_counter()


def _choose(page, label, text):
    """Open a selectbox and type an option; returns when the choice is made (Enter pressed)."""
    exact = page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile(f"^{re.escape(label)}$"))
    page.locator('[data-testid="stSelectbox"]').filter(has=exact).first.click()
    page.keyboard.type(text)
    chosen = time.perf_counter()
    page.keyboard.press("Enter")
    return chosen


def _first_heatmap_seconds(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    page.goto(url)
    _overlay(page).wait_for(timeout=300_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    return page, time.perf_counter() - start


def test_upload_opacity_layer_and_compare_in_a_real_browser(server, browser):
    url, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    timings = {}

    page, timings["first_heatmap_cold_s"] = _first_heatmap_seconds(browser, url)
    page.close()
    page, timings["first_heatmap_warm_s"] = _first_heatmap_seconds(browser, url)
    page.screenshot(path=ARTIFACTS / "1_first_load.png", full_page=True)

    # Upload a real photo through the file input.
    page.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(PHOTOS / "cat.bmp"))
    page.locator('[data-testid="stImage"]').filter(has_text="cat.bmp").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    assert "Egyptian_cat" in page.locator('[data-testid="stImage"]').filter(has_text=" for ").inner_text()
    page.screenshot(path=ARTIFACTS / "2_uploaded.png", full_page=True)

    # Opacity: one step of the slider must re-blend the overlay (no model call behind it).
    samples = []
    for key in ["ArrowRight", "ArrowRight", "ArrowLeft", "ArrowRight", "ArrowLeft"]:
        before = _overlay(page).get_attribute("src")
        page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
        start = time.perf_counter()
        page.keyboard.press(key)
        samples.append(_wait_for_new_overlay(page, before) - start)
    timings["opacity_to_overlay_s"] = sorted(samples)[len(samples) // 2]
    page.screenshot(path=ARTIFACTS / "3_opacity.png", full_page=True)

    # Another layer of the same resolution, then one of another resolution.
    samples = []
    for label, text in [("Layer", "block_16_project"), ("Layer", "block_15_add"), ("Layer", "Conv_1")]:
        before = _overlay(page).get_attribute("src")
        start = _choose(page, label, text)
        samples.append(_wait_for_new_overlay(page, before) - start)
        assert text in page.locator('[data-testid="stImage"]').filter(has_text=" for ").inner_text()
    timings["layer_change_to_overlay_s"] = sorted(samples)[len(samples) // 2]
    page.screenshot(path=ARTIFACTS / "4_layer.png", full_page=True)

    page.get_by_role("tab", name="Compare layers").click()
    panel = page.locator('[role="tabpanel"]:visible')
    panel.locator('[data-testid="stImage"]').nth(3).wait_for(timeout=120_000)
    assert panel.locator('[data-testid="stImage"]').count() == 4
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    page.screenshot(path=ARTIFACTS / "5_compare_layers.png", full_page=True)
    assert not page.locator('[data-testid="stException"]').count()

    _record(timings)


def _record(timings):
    """Merge into test-artifacts/browser_timings.json (each test adds its own keys)."""
    path = ARTIFACTS / "browser_timings.json"
    ARTIFACTS.mkdir(exist_ok=True)
    merged = {**(json.loads(path.read_text()) if path.is_file() else {}), **timings}
    path.write_text(json.dumps(merged, indent=2))
    print("\nbrowser timings:", json.dumps(timings))


def _median_step(page, act, steps):
    """Median seconds from each choice (the key press that makes it) to the new overlay being shown."""
    samples = []
    for step in steps:
        before = _overlay(page).get_attribute("src")
        start = time.perf_counter()
        start = act(step) or start
        samples.append(_wait_for_new_overlay(page, before) - start)
    return sorted(samples)[len(samples) // 2]


def test_a_phone_photo_is_as_live_as_a_small_one(server, browser, tmp_path):
    from synthetic import phone_photo

    url, _ = server
    page, _ = _first_heatmap_seconds(browser, url)
    page.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(phone_photo(tmp_path / "phone.jpg")))
    page.locator('[data-testid="stImage"]').filter(has_text="phone.jpg").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    status = page.locator('[data-testid="stMarkdown"]').filter(has_text="Model input").first.inner_text()
    assert "photo 1280×960 px" in status, status  # the 4000x3000 photo at its working size

    def opacity(key):
        page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
        page.keyboard.press(key)

    timings = {
        "phone_photo_opacity_to_overlay_s": _median_step(page, opacity, ["ArrowRight", "ArrowLeft"] * 3),
        "phone_photo_colormap_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Colormap", name), ["viridis", "inferno", "jet"]),
        "phone_photo_layer_change_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Layer", name), ["block_16_project", "block_15_add", "Conv_1"]),
        "phone_photo_class_change_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Class to explain", name), ["tabby", "goldfish", "envelope"]),
    }
    page.screenshot(path=ARTIFACTS / "6_phone_photo.png", full_page=True)
    assert not page.locator('[data-testid="stException"]').count()
    _record(timings)
