"""Score-CAM in the dashboard against Score-CAM in the engine, side by side. Run: make bench.

Starts the dashboard as `make run` does, then alternates, three times each: the engine's Score-CAM
in this process (MobileNetV2, out_relu, the photo at its working size), and the same in the
dashboard through its own protocol (tests/streamlit_session.py): a photo dropped, then "Score-CAM"
picked in the sidebar, timed to the overlay's map in hand. Each dashboard round drops new bytes
(the same pixels), so nothing comes from a cache. Prints each pair and the median ratio.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]
import local_server  # noqa: E402
from conftest import PHOTOS  # noqa: E402
from streamlit_session import StreamlitSession  # noqa: E402

ROUNDS = 3


def in_the_engine(explainer, photo) -> float:
    start = time.perf_counter()
    explainer.explain(photo, method="scorecam", layers=["out_relu"])
    return time.perf_counter() - start


def in_the_dashboard(url: str, data: bytes) -> float:
    session = StreamlitSession(url, timeout=600)
    try:
        page = session.upload(session.run(), "cat.bmp", data + os.urandom(16))  # new bytes, same pixels
        start = time.perf_counter()
        page = session.choose(page, "Method", "Score-CAM")
        session.fetch(page.overlay_urls[1:])
        seconds = time.perf_counter() - start
        if page.errors or not page.overlay_urls:
            raise RuntimeError(f"no Score-CAM overlay: {page.errors}")
        return seconds
    finally:
        session.close()


def main():
    from dashboard.engine import Explainer, load_model, read_photo

    data = (PHOTOS / "cat.bmp").read_bytes()
    explainer = Explainer(load_model("mobilenet_v2"))
    photo = read_photo(data)
    explainer.explain(photo)  # loaded and traced, as the server is when it answers
    process, url = local_server.start(local_server.MAKE_RUN)
    try:
        pairs = []
        for _ in range(ROUNDS):
            pairs.append((in_the_engine(explainer, photo), in_the_dashboard(url, data)))
            print(f"engine {pairs[-1][0]:.1f} s, dashboard {pairs[-1][1]:.1f} s", flush=True)
    finally:
        process.kill()
    ratio = statistics.median(app / engine for engine, app in pairs)
    print(f"Score-CAM, MobileNetV2 out_relu: dashboard / engine = {ratio:.2f} (median of {ROUNDS}; bar <= 1.3)")


if __name__ == "__main__":
    main()
