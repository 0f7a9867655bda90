"""make run: python -m dashboard.serve [streamlit options]

Starts the dashboard with what the first visitors need already done: TensorFlow imported, the
default model loaded, the first page's prediction and map computed, and the pass over every layer
(instant layer changes) and the faithfulness probe traced. Only then does the server answer (9.5 s
after it starts, here). Tracing in the background while the first visitors arrived made their first
page slower: title 1.9 s and heatmap 2.9 s in a fresh browser, against 1.5 s and 2.3 s now.
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
    explainer.prepare_all_layers()  # joins the background tracing _ready started: done once
    explainer.prepare_metrics()
    print(f"Warmed up in {time.perf_counter() - started:.1f} s: {DEFAULT_MODEL} loaded, first map ready, "
          "every layer traced.", flush=True)


def main(argv=None) -> None:
    from streamlit.web import cli

    warm_up()
    sys.argv = ["streamlit", "run", str(ROOT / "dashboard" / "app.py"), *(sys.argv[1:] if argv is None else argv)]
    cli.main()


if __name__ == "__main__":
    main()
