"""Small files that cost gigabytes, and the files phones and Windows make: each gets a bounded, clear
answer in the CLI and the dashboard, with peak memory measured in a fresh process."""

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, ROOT, needs_weights
from test_photo_sizes import LIMIT_MB, _probe
from bad_inputs import make
from dashboard.cli import main
from dashboard.engine import limits, read_photo
from dashboard.engine.models import read_labels


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, make(folder)


def _one_sentence(said: str) -> bool:
    return "Traceback" not in said and said.count("error:") == 1 and len(said.strip().splitlines()) == 1


def test_every_case_through_the_cli_is_one_sentence_under_1_5_gb(corpus):
    folder, cases = corpus
    result = _probe("cli-cases", folder)
    for name, case in cases.items():
        answer = result["answers"][name]
        assert answer["status"] == case.status, (name, answer)
        assert case.says in answer["said"], (name, answer)
        if case.status == 2:
            assert _one_sentence(answer["said"]), (name, answer)
    with Image.open(folder / "tall_figure.png") as figure:  # the 10 x 10,000 px photo beside its overlay
        width, height = figure.size
        assert max(width, height) <= limits.FIGURE_SIDE and height <= limits.FIGURE_ASPECT * width / 2 + 100, figure.size
    assert result["peak_mb"] < LIMIT_MB, result


@needs_weights
def test_every_case_in_the_dashboard_is_an_error_and_the_app_keeps_working(corpus):
    folder, cases = corpus
    result = _probe("app-cases", folder)
    for name, case in cases.items():
        if not (case.model or case.photo):
            continue
        answer = result["answers"][name]
        assert not answer["exceptions"], (name, answer)
        assert answer["overlay"], (name, answer)  # the page still explains a photo
        if case.status == 2:
            assert any(case.says in error for error in answer["errors"]), (name, answer)
        if case.model:  # a refused model leaves the previous one on screen
            assert answer["summary"].startswith("**MobileNetV2**"), (name, answer)
    assert any("3 pages: the first is explained" in c for c in result["answers"]["multi-page TIFF"]["captions"])
    assert not result["answers"]["tall figure"]["errors"]
    assert result["peak_mb"] - result["warm_mb"] < LIMIT_MB, result


def test_the_figure_is_bounded_in_both_directions():
    for height, width in ((10_000, 10), (10, 10_000), (3000, 4000), (224, 224)):
        for panels in (2, 5, 17):
            inches = limits.figure_inches(height, width, panels)
            assert max(inches) * 100 <= limits.FIGURE_SIDE + 1e-6
    wide, tall = limits.figure_inches(10, 10_000, 2), limits.figure_inches(10_000, 10, 2)
    assert wide[1] > 0.6 and tall[1] <= 4 * 4 + 0.6  # a panel is at most 4 times taller or wider than the other side


def test_numbers_are_ascii_digits_and_anything_else_is_a_name():
    from dashboard.engine.errors import whole_number

    assert [whole_number(text) for text in ("3", " 12 ", "-1", "²", "①", "٣", "1.0")] == [3, 12, -1, None, None, None, None]


@pytest.fixture(scope="module")
def tiny(corpus):
    folder, _ = corpus
    return folder, ["-i", str(folder / "photo.png"), "-m", str(folder / "good.h5")]


def test_outputs_are_written_in_the_format_their_extension_names(tiny, capsys):
    folder, argv = tiny
    assert main(argv + ["-o", str(folder / "figure.jpg"), "--save-map", str(folder / "maps.npz")]) == 0
    assert (folder / "figure.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name
    with np.load(folder / "maps.npz") as maps:
        assert set(maps.files) == {"conv/map", "conv/raw"}
    assert main(argv + ["-o", str(folder / "figure.svg")]) == 0
    assert (folder / "figure.svg").read_text().lstrip().startswith("<?xml")
    capsys.readouterr()
    for extra, says in ((["-o", str(folder / "figure.bmp")], "-o writes a figure as .png"),
                        (["--save-map", str(folder / "maps.bin")], "does not end in .npz")):
        with pytest.raises(SystemExit) as stop:
            main(argv + extra)
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1
    assert not (folder / "figure.bmp").exists() and not list(folder.glob("maps.bin*"))


def test_a_failed_write_is_status_2_in_one_line_and_leaves_nothing(tiny, capsys):
    folder, argv = tiny
    full = folder / "full.npz"
    full.symlink_to("/dev/full")  # a disk with no space left
    assert main(argv + ["--save-map", str(full)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Could not write {full}: No space left on device") and len(err.splitlines()) == 1
    missing = folder / "no such folder" / "figure.png"
    assert main(argv + ["-o", str(missing)]) == 2
    assert "Could not write" in capsys.readouterr().err
    assert not list(folder.rglob("*.partial"))


@needs_weights
def test_ctrl_c_during_score_cam_is_one_line_and_leaves_no_file(tmp_path):
    figure = tmp_path / "figure.png"
    process = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "-i", str(PHOTOS / "cat.bmp"), "--method", "scorecam",
                                "-o", str(figure)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:  # wait until the model is loaded and working
        with open(f"/proc/{process.pid}/status") as status:
            rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        if rss_kb > 700 * 1024:
            break
        time.sleep(0.2)
    time.sleep(2)
    assert process.poll() is None, "Score-CAM ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert err.strip() == "interrupted: no file was left half-written", err[-2000:]
    assert list(tmp_path.iterdir()) == []


def _smooth_photo() -> np.ndarray:
    y, x = np.mgrid[0:96, 0:128]
    return np.stack([x * 2, y * 2, 255 - x - y], axis=-1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("format_", ["HEIF", "AVIF"])
def test_heic_and_avif_photos_decode_close_to_their_source(tmp_path, format_, capsys):
    source = _smooth_photo()
    path = tmp_path / f"photo.{'heic' if format_ == 'HEIF' else 'avif'}"
    Image.fromarray(source).save(path, format_, quality=95)
    decoded = read_photo(path)
    assert decoded.shape == source.shape
    assert np.abs(decoded.astype(int) - source).mean() < 4
    folder = tmp_path
    model = folder / "tiny.keras"
    from bad_inputs import _tiny_model

    _tiny_model().save(model)
    assert main(["-i", str(path), "-m", str(model)]) == 0
    assert "explained:" in capsys.readouterr().out


@needs_weights
def test_a_heic_photo_in_the_drop_zone(tmp_path):
    from streamlit.testing.v1 import AppTest

    buffer = io.BytesIO()
    Image.open(PHOTOS / "hot_dog.jpg").save(buffer, "HEIF", quality=90)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    at.main.get("file_uploader")[0].set_value(("lunch.heic", buffer.getvalue(), "image/heic")).run()
    assert not at.exception and not at.error
    assert "hotdog" in at.main.get("markdown")[0].value


@pytest.mark.parametrize("data", [
    "0 Café\n1 Crème\n".encode("utf-8-sig"),  # Windows Notepad's UTF-8
    "0 Café\n1 Crème\n".encode(),
    "0 Café\n1 Crème\n".encode("utf-16"),  # Notepad's "Unicode", with its BOM
    "0 Café\n1 Crème\n".encode("utf-16-be").join([b"\xfe\xff", b""]),
    "0 Café\n1 Crème\n".encode("latin-1"),
])
def test_labels_files_in_the_encodings_people_save(tmp_path, data):
    (tmp_path / "labels.txt").write_bytes(data)
    assert read_labels(tmp_path / "labels.txt", "labels.txt") == ["Café", "Crème"]
