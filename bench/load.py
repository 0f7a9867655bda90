"""How many students can one server hold? Run: make load  (a measurement, not part of make test).

Starts the dashboard on 127.0.0.1, then drives headless Chromium sessions against it, all at once:
waves of 4, 8 and 16 sessions opening the same sample, and 8 sessions each uploading a different
photo (three of them phone-size). Each session must show its own correct heatmap. Prints the time
from opening the page (or dropping the photo) to the first heatmap, p50 and p95 per wave, the
server's peak memory, and its memory after 50 phone-size uploads; writes test-artifacts/load.json.
Then server CPU per opacity step, one at a time and in a burst of key presses. Every wait is
bounded; the server is stopped at the end. `--url URL --pid PID` measures a server already running
(an earlier version, say) instead of starting one.
"""

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]
import local_server  # noqa: E402
from conftest import PHOTOS  # noqa: E402
from synthetic import phone_photo  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 180_000
# The shared photos and their ImageNet top-1 (shared/photos/SOURCES.md); the phone-size copies keep it.
UPLOADS = {"bird.bmp": "chickadee", "cat.bmp": "Egyptian cat", "dragonfly.bmp": "dragonfly",
           "grace_hopper.bmp": "military uniform", "hot_dog.jpg": "hotdog"}
DROP_ZONE = '[data-testid="stMain"] [data-testid="stFileUploader"] input[type="file"]'  # on the first screen
PHONE_COPIES = ("cat.bmp", "hot_dog.jpg", "bird.bmp")
# The overlay's caption once it is shown and differs from `old` (the overlay before an upload): the
# canvas of the overlay component, or (for a server of the earlier design, `--url`) the overlay image.
FIND = """() => { for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')) {
                    const c = host.shadowRoot && [...host.shadowRoot.querySelectorAll('canvas.gc-canvas')]
                      .find(c => c.offsetParent !== null && c.dataset.painted);
                    if (c) return {mark: c.dataset.map + ' ' + c.dataset.painted, caption: c.getAttribute('aria-label')}; }
                  const e = [...document.querySelectorAll('[data-testid="stImage"]')].find(e => e.innerText.includes(' for '));
                  const img = e && e.querySelector('img');
                  return img && img.complete ? {mark: img.src, caption: e.innerText} : null; }"""
OVERLAY = f"(old) => {{ const o = ({FIND})(); return o && o.mark !== old ? o.caption : null; }}"
OVERLAY_SRC = f"() => (({FIND})() || {{}}).mark || null"
# The opacity control: the overlay component's slider, or the earlier design's sidebar slider.
OPACITY = 'input.gc-opacity:visible, [data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]'


def memory_mb(pid: int) -> dict:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "peak_mb": int(fields["VmHWM"].split()[0]) / 1024}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_heatmap(browser, url, upload=None):
    """Seconds from opening the page (or, with `upload`, from dropping the photo) to its first heatmap,
    and the overlay's caption."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    try:
        start = time.perf_counter()
        await page.goto(url, timeout=TIMEOUT_MS)
        caption = await (await page.wait_for_function(OVERLAY, arg=None, timeout=TIMEOUT_MS, polling=100)).json_value()
        if upload:
            before = await page.evaluate(OVERLAY_SRC)
            start = time.perf_counter()
            await page.locator(DROP_ZONE).set_input_files(str(upload))
            await page.locator('[data-testid="stImage"]').filter(has_text=upload.name).wait_for(timeout=TIMEOUT_MS)
            caption = await (await page.wait_for_function(OVERLAY, arg=before, timeout=TIMEOUT_MS, polling=100)).json_value()
        seconds = time.perf_counter() - start
        failed = await page.locator('[data-testid="stException"]').count()
        return seconds, caption, failed
    finally:
        await context.close()


async def interactions(browser, url, pid, steps=10):
    """Server CPU per opacity step: `steps` key presses one at a time up from 0.5 (each waits until the
    server has the new value in the link), then `steps` presses at once back down, as a hand on the
    arrow key does."""
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    await page.goto(url, timeout=TIMEOUT_MS)
    await page.wait_for_function(OVERLAY, arg=None, timeout=TIMEOUT_MS)
    await page.wait_for_timeout(2000)
    slider = page.locator(OPACITY).first
    linked = "v => new URLSearchParams(location.search).get('opacity') === v"
    value, result = 0.5, {}
    for kind, key, pause in (("one_step", "ArrowRight", True), ("burst", "ArrowLeft", False)):
        cpu = cpu_seconds(pid)
        for _ in range(steps):
            value = round(value + (0.05 if key == "ArrowRight" else -0.05), 2)
            await slider.focus()
            await page.keyboard.press(key)
            if pause:
                await page.wait_for_function(linked, arg=str(value), timeout=TIMEOUT_MS)
                await page.wait_for_timeout(400)  # the run that follows the report ends
        await page.wait_for_function(linked, arg=str(value), timeout=TIMEOUT_MS)
        await page.wait_for_timeout(1500)
        result[f"server_cpu_s_per_{kind}"] = (cpu_seconds(pid) - cpu) / steps
    print(f"opacity steps: server CPU {result['server_cpu_s_per_one_step'] * 1000:.0f} ms per step one at a time, "
          f"{result['server_cpu_s_per_burst'] * 1000:.0f} ms per step in a burst of {steps}")
    await context.close()
    return result


def summary(name, seconds, server_cpu):
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    row = {"wave": name, "sessions": len(seconds), "p50_s": statistics.median(ordered), "p95_s": p95,
           "max_s": ordered[-1], "server_cpu_s_per_session": server_cpu / len(seconds)}
    print(f"{name:<30} {len(seconds):>3} sessions   p50 {row['p50_s']:5.2f} s   p95 {p95:5.2f} s   "
          f"max {ordered[-1]:5.2f} s   server CPU {row['server_cpu_s_per_session']:.2f} s/session")
    return row


async def measure(url, pid, photos, phones):
    from playwright.async_api import async_playwright

    report = {"waves": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        warm, _, _ = await first_heatmap(browser, url)
        report["warm_up_s"] = warm
        report["warm"] = memory_mb(pid)
        print(f"first visitor (loads and traces the model): {warm:.2f} s; server {report['warm']['rss_mb']:.0f} MB")

        # Each wave asks for a layer not computed yet (a link with ?layer=), so its sessions really
        # ask for the same new map at the same moment.
        for count, layer in ((1, "block_16_expand_relu"), (2, "block_16_depthwise_relu"), (4, "block_16_project"),
                             (8, "block_15_add"), (16, "block_14_add")):
            cpu = cpu_seconds(pid)
            results = await asyncio.gather(*[first_heatmap(browser, f"{url}/?layer={layer}") for _ in range(count)])
            wrong = [caption for _, caption, failed in results
                     if failed or "Egyptian cat (285)" not in caption or layer not in caption]
            assert not wrong, f"sessions showed the wrong result or an exception: {wrong}"
            report["waves"].append(summary("same sample and layer, at once", [s for s, _, _ in results],
                                           cpu_seconds(pid) - cpu))

        cpu = cpu_seconds(pid)
        results = await asyncio.gather(*[first_heatmap(browser, url, upload=path) for path in photos])
        for (seconds, caption, failed), path in zip(results, photos):
            expected = UPLOADS.get(path.name) or UPLOADS[next(n for n in PHONE_COPIES if Path(n).stem == path.stem[6:])]
            assert not failed and expected in caption, f"{path.name}: expected {expected}, saw {caption!r}"
        report["waves"].append(summary("8 different uploads, at once", [s for s, _, _ in results], cpu_seconds(pid) - cpu))
        report["after_waves"] = memory_mb(pid)

        report["interactions"] = await interactions(browser, url, pid)

        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(url, timeout=TIMEOUT_MS)
        await page.wait_for_function(OVERLAY, arg=None, timeout=TIMEOUT_MS)
        for path in phones:
            before = await page.evaluate(OVERLAY_SRC)
            await page.locator(DROP_ZONE).set_input_files(str(path))
            await page.wait_for_function(OVERLAY, arg=before, timeout=TIMEOUT_MS)
        await context.close()
        report["after_50_phone_uploads"] = memory_mb(pid)
        await browser.close()
    return report


def class_photos(folder: Path) -> list[Path]:
    """The 8 uploads: the five shared photos and three of them at phone size (4000 px on the long side)."""
    from PIL import Image

    photos = [PHOTOS / name for name in UPLOADS]
    for name in PHONE_COPIES:
        image = Image.open(PHOTOS / name).convert("RGB")
        scale = 4000 / max(image.size)
        path = folder / f"phone_{Path(name).stem}.jpg"
        image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC).save(path, quality=90)
        photos.append(path)
    return photos


def main():
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        photos = class_photos(folder)
        phones = [phone_photo(folder / f"class_{i:02d}.jpg", seed=1000 + i) for i in range(50)]
        if "--url" in sys.argv:  # a server started by hand (another version, to compare): URL and pid
            url, pid = sys.argv[sys.argv.index("--url") + 1], int(sys.argv[sys.argv.index("--pid") + 1])
            report = measure_and_report(url, pid, photos, phones)
        else:
            process, url = local_server.start(local_server.STREAMLIT_RUN)
            try:
                report = measure_and_report(url, process.pid, photos, phones)
            finally:
                process.terminate()
                process.wait(timeout=30)
    out = ROOT / "test-artifacts" / ("load_other.json" if "--url" in sys.argv else "load.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(ROOT)}")


def measure_and_report(url, pid, photos, phones):
    report = asyncio.run(asyncio.wait_for(measure(url, pid, photos, phones), timeout=1800))
    cores = os.cpu_count() or 1
    fitting = [wave["sessions"] for wave in report["waves"] if wave["p95_s"] <= 3.0]
    report["sessions_per_core_at_p95_3s"] = max(fitting, default=0) / cores
    warm = report["warm"]["rss_mb"]
    print(f"server memory: warm {warm:.0f} MB, peak {report['after_50_phone_uploads']['peak_mb']:.0f} MB, "
          f"after 50 phone uploads {report['after_50_phone_uploads']['rss_mb']:.0f} MB "
          f"(+{report['after_50_phone_uploads']['rss_mb'] - warm:.0f} MB)")
    print(f"sessions per core with p95 <= 3 s: {report['sessions_per_core_at_p95_3s']:g} ({cores} cores)")
    return report


if __name__ == "__main__":
    main()
