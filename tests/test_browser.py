"""The dashboard in a real browser: streamlit run on a free port, driven by Playwright in Debian's
headless Chromium. Timings go to test-artifacts/browser_timings.json with the screenshots (they
are reported, never asserted: this machine is too noisy for timed assertions)."""

import json
import os
import re
import shutil
import time

import pytest

import local_server
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
    started = time.perf_counter()
    process, url = local_server.start(local_server.MAKE_RUN)
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


def _first_heatmap_seconds(browser, url, wide=True):
    page = browser.new_page(viewport={"width": 1400, "height": 1000} if wide else {"width": 1280, "height": 720})
    start = time.perf_counter()
    page.goto(url)
    _overlay(page).wait_for(timeout=300_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    return page, time.perf_counter() - start


def test_upload_opacity_layer_and_compare_in_a_real_browser(server, browser):
    url, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    timings = {}

    page, timings["first_heatmap_fresh_server_s"] = _first_heatmap_seconds(browser, url, wide=False)
    page.screenshot(path=ARTIFACTS / "1_first_load_1280x720.png")
    overlay, original = _overlay(page).bounding_box(), page.locator('[data-testid="stImage"]').first.bounding_box()
    assert overlay["y"] + 0.5 * overlay["height"] < 720 and original["y"] < 360, (original, overlay)  # above the fold
    page.close()
    page, timings["first_heatmap_warm_s"] = _first_heatmap_seconds(browser, url)

    # Drop a real photo on the first screen's drop zone: no source to choose first.
    page.locator('[data-testid="stMain"] [data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(PHOTOS / "cat.bmp"))
    page.locator('[data-testid="stImage"]').filter(has_text="cat.bmp").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    assert "Egyptian cat" in page.locator('[data-testid="stImage"]').filter(has_text=" for ").inner_text()
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
    for label, text in [("Layer", "block_16_project"), ("Layer", "block_15_project"), ("Layer", "Conv_1")]:
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
    page.locator('[data-testid="stMain"] [data-testid="stFileUploader"] input[type="file"]').set_input_files(
        str(phone_photo(tmp_path / "phone.jpg")))
    page.locator('[data-testid="stImage"]').filter(has_text="phone.jpg").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    # The 4000x3000 photo is shown and explained at its working size.
    page.locator('[data-testid="stMarkdown"]').filter(has_text="photo 1280×960 px").wait_for(timeout=60_000)

    def opacity(key):
        page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
        pressed = time.perf_counter()
        page.keyboard.press(key)
        return pressed

    timings = {
        "phone_photo_opacity_to_overlay_s": _median_step(page, opacity, ["ArrowRight", "ArrowLeft"] * 3),
        "phone_photo_colormap_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Colormap", name), ["viridis", "inferno", "jet"]),
        "phone_photo_layer_change_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Layer", name), ["block_16_project", "block_15_project", "Conv_1"]),
        "phone_photo_class_change_to_overlay_s": _median_step(
            page, lambda name: _choose(page, "Class to explain", name), ["tabby", "goldfish", "envelope"]),
    }
    page.screenshot(path=ARTIFACTS / "6_phone_photo.png", full_page=True)
    assert not page.locator('[data-testid="stException"]').count()
    _record(timings)



def _open(browser, url, viewport=(1280, 720), ready=None):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.goto(url)
    (ready(page) if ready else _overlay(page)).wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    return page


def _no_exception(page):
    page.wait_for_timeout(500)
    assert not page.locator('[data-testid="stException"]').count()


def test_presenter_mode_fills_a_projector(server, browser):
    url, _ = server
    page = _open(browser, f"{url}/?present=1", ready=lambda p: p.locator(".present-caption"))
    page.wait_for_timeout(800)
    page.screenshot(path=ARTIFACTS / "presenter_1280x720.png")
    images = page.locator('[data-testid="stMainBlockContainer"] [data-testid="stImage"] img')
    overlay = images.nth(1).bounding_box()
    caption = page.locator(".present-caption")
    assert "Where MobileNetV2 looks for" in caption.inner_text()
    assert caption.bounding_box()["y"] + caption.bounding_box()["height"] <= 720  # all on one screen
    assert overlay["width"] >= 500 and overlay["y"] + overlay["height"] <= 720
    assert not page.locator('[data-testid="stSidebar"][aria-expanded="true"]').count()  # sidebar collapsed
    _record({"presenter_overlay_px": [round(overlay["width"]), round(overlay["height"])]})
    _no_exception(page)


def test_the_scrubber_score_cam_and_tab_round_trips_in_a_browser(server, browser):
    url, _ = server
    page = _open(browser, f"{url}/?method=scorecam&layer=block_16_project")  # a link with Score-CAM
    assert "Score-CAM" in page.locator('[data-testid="stImage"]').filter(has_text=" for ").inner_text()
    _no_exception(page)
    before = _overlay(page).get_attribute("src")
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    page.keyboard.press("ArrowRight")  # Score-CAM, then an opacity step
    _wait_for_new_overlay(page, before)
    _no_exception(page)

    page.get_by_role("tab", name="Through the layers").click()
    scrub = page.locator('[role="tabpanel"]:visible [data-testid="stSlider"] input[type="range"]')
    scrub.wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    samples = []
    for key in ["ArrowLeft"] * 5:
        overlays = page.locator('[role="tabpanel"]:visible [data-testid="stImage"] img')
        before = overlays.nth(1).get_attribute("src")
        scrub.focus()
        start = time.perf_counter()
        page.keyboard.press(key)
        page.wait_for_function(
            """old => { const imgs = document.querySelectorAll('[role="tabpanel"] [data-testid="stImage"] img');
                        return [...imgs].some(i => i.src !== old && i.complete) && imgs[1] && imgs[1].src !== old; }""",
            arg=before, timeout=60_000, polling="raf")
        samples.append(time.perf_counter() - start)
    page.screenshot(path=ARTIFACTS / "7_through_the_layers.png")
    _record({"layer_scrub_step_s": sorted(samples)[len(samples) // 2]})

    # Tab round trip: the compare pickers keep what was chosen.
    page.get_by_role("tab", name="Compare layers").click()
    panel = page.locator('[role="tabpanel"]:visible')
    panel.locator('[data-testid="stImage"]').nth(3).wait_for(timeout=120_000)
    count = panel.locator('[data-testid="stImage"]').count()
    page.get_by_role("tab", name="Explore").click()
    _overlay(page).wait_for(timeout=60_000)
    page.get_by_role("tab", name="Compare layers").click()
    panel = page.locator('[role="tabpanel"]:visible')
    panel.locator('[data-testid="stImage"]').nth(3).wait_for(timeout=120_000)
    assert panel.locator('[data-testid="stImage"]').count() == count
    assert not panel.get_by_text("Pick at least two layers").count()
    _no_exception(page)


def test_a_phone_sees_the_result_first(server, browser):
    url, _ = server
    page = _open(browser, url, viewport=(390, 844))
    page.screenshot(path=ARTIFACTS / "phone_390x844.png")
    assert not page.locator('[data-testid="stSidebar"][aria-expanded="true"]').count()
    original = page.locator('[data-testid="stImage"]').filter(has_text="original ·").bounding_box()
    overlay = _overlay(page).bounding_box()
    assert overlay["y"] < original["y"], (overlay, original)  # stacked, the overlay first
    _no_exception(page)


def test_the_faithfulness_tab_draws_curves_scores_and_the_sanity_check(server, browser):
    url, _ = server
    panel = lambda p: p.locator('[role="tabpanel"]:visible')  # noqa: E731
    page = _open(browser, f"{url}/?tab=Faithfulness", ready=lambda p: panel(p).locator('[data-testid="stDataFrame"]'))
    assert panel(page).locator('[data-testid="stVegaLiteChart"]').count() == 2  # deletion and insertion
    assert panel(page).locator('[data-testid="stImage"]').count() == 4  # the photo at 0, 10, 25 and 50% deleted
    panel(page).get_by_text("Run the sanity check").click()
    panel(page).get_by_text("The map of a random other class").wait_for(timeout=120_000)
    page.wait_for_function("() => [...document.querySelectorAll('img')].every(i => i.complete)")
    assert panel(page).locator('[data-testid="stImage"]').count() == 4 + 8  # and the strip of randomised maps
    assert panel(page).locator('[data-testid="stVegaLiteChart"]').count() == 3  # and the rank-correlation curve
    page.screenshot(path=ARTIFACTS / "8_faithfulness_sanity.png")
    _no_exception(page)


def test_display_choices_survive_a_model_that_waits_for_its_file(server, browser):
    # "Your own model" without a file stops before the sidebar's display widgets are drawn, and
    # Streamlit forgets the value of a widget a run leaves out (the slider came back at 0).
    url, _ = server
    page = _open(browser, url)
    before = _overlay(page).get_attribute("src")
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    page.keyboard.press("ArrowRight")
    _wait_for_new_overlay(page, before)
    _choose(page, "Model", "Your own")
    page.get_by_text("Drop your model file in the sidebar").wait_for(timeout=60_000)
    _choose(page, "Model", "MobileNetV2")
    _overlay(page).wait_for(timeout=120_000)
    assert "0.55" in page.locator('[data-testid="stSlider"]').first.inner_text()
    _no_exception(page)
