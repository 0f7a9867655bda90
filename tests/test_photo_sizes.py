"""Phone photos and huge images: decoded straight to a working size, with memory bounded in the
engine, the CLI and the dashboard (measured in fresh processes), and faults answered plainly."""

import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import ROOT, needs_weights
from synthetic import huge_png, phone_photo
from dashboard.engine import read_photo
from dashboard.engine.images import WORKING_SIDE

LIMIT_MB = 1536  # the bar: 1.5 GB


def _probe(mode, *photos):
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "rss_probe.py"), mode, *map(str, photos)],
                            cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    line = next((l for l in result.stdout.splitlines() if l.startswith("RSS ")), None)
    assert line, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(line[4:])


def test_big_photos_are_decoded_to_the_working_size(tmp_path):
    phone = read_photo(phone_photo(tmp_path / "phone.jpg"))
    assert phone.shape == (960, 1280, 3)
    assert read_photo(tmp_path / "phone.jpg", max_side=None).shape == (3000, 4000, 3)
    assert read_photo(huge_png(tmp_path / "huge.png")).shape == (WORKING_SIDE, WORKING_SIDE, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: rotate 90 degrees clockwise to view
    Image.open(tmp_path / "phone.jpg").save(tmp_path / "upright.jpg", exif=exif)
    assert read_photo(tmp_path / "upright.jpg").shape == (1280, 960, 3)
    for mode in ("P", "I;16", "1", "LA"):  # modes that cannot all be averaged while decoding
        buffer = io.BytesIO()
        Image.new(mode, (3000, 2000)).save(buffer, "TIFF" if mode != "LA" else "PNG")
        assert read_photo(buffer.getvalue()).shape == (853, 1280, 3), mode


@needs_weights
def test_maps_and_predictions_at_the_working_size(tmp_path, explainer):
    photo = read_photo(phone_photo(tmp_path / "phone.jpg"))
    e = explainer.explain(tmp_path / "phone.jpg")  # a path, decoded at the working size
    assert photo.shape[:2] == e.maps[explainer.default_layer].shape
    assert e.maps[explainer.default_layer].shape == (960, 1280)
    array = np.asarray(Image.open(tmp_path / "phone.jpg"))  # a full-size array given to the engine
    assert explainer.explain(array).maps[explainer.default_layer].shape == (960, 1280)


@needs_weights
def test_the_cli_stays_under_1_5_gb_on_a_9000_px_png(tmp_path):
    result = _probe("cli", huge_png(tmp_path / "huge.png"), phone_photo(tmp_path / "phone.jpg"))
    assert result["status"] == [0, 0]
    assert result["peak_mb"] < LIMIT_MB, result


@needs_weights
def test_the_dashboard_holds_its_memory_over_many_phone_photos(tmp_path):
    photos = [phone_photo(tmp_path / f"phone{i}.jpg", seed=i) for i in range(12)] + [huge_png(tmp_path / "huge.png")]
    result = _probe("app", *photos)
    assert result["errors"] == [] and result["overlays"] == len(photos), result
    assert result["end_mb"] - result["warm_mb"] < LIMIT_MB, result
    assert result["peak_mb"] - result["warm_mb"] < LIMIT_MB, result
