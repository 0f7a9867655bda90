"""make run: python -m dashboard.serve [streamlit options]

Starts the dashboard with what the first visitor needs already done: TensorFlow imported, the
default model loaded and its default layer traced, and the first page's prediction and map
computed (about 5 s on 2 cores). Only then does the server answer, so nobody waits on a blank
page. The pass over every layer (for instant layer changes) is traced in the background.
Streamlit's settings come from .streamlit/config.toml, its STREAMLIT_* environment variables,
or options given here (e.g. --server.port 8600).
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def warm_up() -> None:
    from dashboard import compute, photos
    from dashboard.engine import DEFAULT_MODEL

    started = time.perf_counter()
    explainer = compute.named_explainer(DEFAULT_MODEL)  # loads, traces the default layer, and the rest in the background
    data = photos.SAMPLES[photos.DEFAULT_SAMPLE].read_bytes()
    digest = compute.digest(data)
    array = compute.photo(digest, data)
    top = compute.predict(DEFAULT_MODEL, digest, explainer, array)
    compute.explain(DEFAULT_MODEL, digest, (explainer.default_layer,), top[0][0], "gradcam", False, explainer, array)
    print(f"Warmed up in {time.perf_counter() - started:.1f} s: {DEFAULT_MODEL} loaded, first map ready.", flush=True)


def main(argv=None) -> None:
    from streamlit.web import cli

    warm_up()
    sys.argv = ["streamlit", "run", str(ROOT / "dashboard" / "app.py"), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
