"""Memory, measured in a fresh process: python tests/rss_probe.py cli|app PNG JPEG...
or python tests/rss_probe.py cli-cases|app-cases FOLDER (the bad_inputs corpus, made in FOLDER).

Prints JSON: resident memory (MB) when warm, after the inputs, and the peak; for the corpus, each
case's answer. Run by test_photo_sizes.py and test_bad_inputs.py. The peak of a process that ran
every case bounds each case's peak."""

import contextlib
import io
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


def corpus_through_the_cli(folder):
    """Each case's status and what it wrote (stderr, then stdout), in one process."""
    from dashboard.cli import main
    from bad_inputs import make

    answers = {}
    for name, case in make(Path(folder)).items():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(case.argv)
        answers[name] = {"status": status, "said": err.getvalue() + out.getvalue()}
    return {"answers": answers}


def corpus_through_the_app(folder):
    """Each case's photo dropped on the page and model file dropped in the sidebar, in one session:
    what the page said (errors, captions), whether an exception showed, and what stayed on screen."""
    from streamlit.testing.v1 import AppTest
    from bad_inputs import make

    cases = make(Path(folder))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    warm = rss_mb()
    answers = {}
    for index, (name, case) in enumerate(cases.items()):
        if case.photo:
            drop_zone = at.main.get("file_uploader")[0]
            drop_zone.set_value((Path(case.photo).name, Path(case.photo).read_bytes(), "image/png")).run()
        elif case.model:
            if at.sidebar.selectbox(key="model").value != "own":
                at.sidebar.selectbox(key="model").set_value("own").run()
            at.sidebar.file_uploader(key="model_file").set_value(
                (Path(case.model).name, Path(case.model).read_bytes(), "application/octet-stream")).run()
        else:
            continue
        answers[name] = {
            "errors": [e.value for e in at.error], "exceptions": [str(e.value) for e in at.exception],
            "captions": [c.value for c in at.main.get("caption")],
            "summary": at.main.get("markdown")[0].value if at.main.get("markdown") else "",
            "overlay": bool(at.main.get("bidi_component")),
        }
    return {"warm_mb": warm, "answers": answers}


if __name__ == "__main__":
    mode, inputs = sys.argv[1], sys.argv[2:]
    sys.path.insert(0, str(ROOT / "tests"))
    start = rss_mb()
    modes = {"cli": through_the_cli, "app": through_the_app, "cli-cases": lambda folder: corpus_through_the_cli(*folder),
             "app-cases": lambda folder: corpus_through_the_app(*folder)}
    result = modes[mode](inputs)
    result.update(start_mb=start, end_mb=rss_mb(), peak_mb=peak_mb())
    print("RSS " + json.dumps(result))
