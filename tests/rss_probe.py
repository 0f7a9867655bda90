"""Memory of big photos, measured in a fresh process: python tests/rss_probe.py cli|app PNG JPEG...

Prints JSON: resident memory (MB) when warm, after the photos, and the peak. Run by test_photo_sizes.py."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_mb() -> float:
    # Not getrusage's ru_maxrss: Linux carries the parent's maximum across fork and exec, so a probe
    # started by a large pytest process would report the parent's size. VmHWM starts anew at exec.
    return _status_mb("VmHWM")


def through_the_cli(photos):
    from dashboard.cli import main

    status = [main(["-i", photo, "--json"]) for photo in photos]
    return {"status": status}


def through_the_app(photos):
    """The dashboard's script (AppTest): the warm app, then each photo uploaded in turn."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    warm = rss_mb()
    errors, overlays = [], 0
    for index, photo in enumerate(photos):
        data = Path(photo).read_bytes()
        drop_zone = at.main.get("file_uploader")[0]
        drop_zone.set_value((f"photo{index}{Path(photo).suffix}", data, "image/jpeg")).run()
        errors += [e.value for e in at.error] + [str(e) for e in at.exception]
        overlays += any(" for " in panel["caption"] for element in at.main.get("bidi_component")
                        for panel in json.loads(element.proto.json)["panels"])  # the overlay component
    return {"warm_mb": warm, "errors": errors, "overlays": overlays}


if __name__ == "__main__":
    mode, photos = sys.argv[1], sys.argv[2:]
    start = rss_mb()
    result = (through_the_cli if mode == "cli" else through_the_app)(photos)
    result.update(start_mb=start, end_mb=rss_mb(), peak_mb=peak_mb())
    print("RSS " + json.dumps(result))
