"""The command line: odd but valid images are explained at the size a viewer shows; bad input
gets status 2 and one line on stderr."""

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, ROOT, needs_weights
from dashboard.cli import main

FAST = ["--model", "mobilenet"]  # MobileNet 0.25 (128 px): the odd-image cases need the pipeline, not accuracy


def _save(tmp_path, name, image, **options):
    path = tmp_path / name
    image.save(path, **options)
    return path


def _rgb(width=60, height=40):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), np.uint8))


def _rotated_jpeg(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    return _save(tmp_path, "rotated.jpg", _rgb(60, 40), exif=exif)


def _animated_gif(tmp_path):
    frames = [_rgb(50, 30).convert("P"), Image.new("P", (50, 30), 3)]
    return _save(tmp_path, "animated.gif", frames[0], save_all=True, append_images=frames[1:])


ODD_IMAGES = {
    "grayscale": (lambda p: _save(p, "gray.png", _rgb().convert("L")), (40, 60)),
    "palette": (lambda p: _save(p, "palette.png", _rgb().convert("P")), (40, 60)),
    "rgba": (lambda p: _save(p, "rgba.png", _rgb().convert("RGBA")), (40, 60)),
    "cmyk": (lambda p: _save(p, "cmyk.jpg", _rgb().convert("CMYK")), (40, 60)),
    "16-bit": (lambda p: _save(p, "deep.png", Image.fromarray(np.linspace(0, 65535, 2400).reshape(40, 60).astype(np.uint16))), (40, 60)),
    "webp": (lambda p: _save(p, "photo.webp", _rgb()), (40, 60)),
    "animated gif": (_animated_gif, (30, 50)),
    "exif rotation": (_rotated_jpeg, (60, 40)),
    "1x1": (lambda p: _save(p, "dot.png", _rgb(1, 1)), (1, 1)),
    "12x3000": (lambda p: _save(p, "strip.png", _rgb(12, 3000)), (1280, 5)),  # the working size: 1280 px at most
}


@needs_weights
@pytest.mark.parametrize("kind", list(ODD_IMAGES))
def test_odd_images_are_explained_at_their_viewed_size(tmp_path, kind, capsys):
    make, shape = ODD_IMAGES[kind]
    path = make(tmp_path)
    maps = tmp_path / "maps.npz"
    assert main(["-i", str(path), *FAST, "--save-map", str(maps)]) == 0
    saved = np.load(maps)
    (layer,) = {key.split("/")[0] for key in saved.files}
    assert saved[f"{layer}/map"].shape == shape
    assert not np.isnan(saved[f"{layer}/map"]).any()


def _huge_png(tmp_path):
    # A valid PNG header claiming 20000 x 20000 pixels (400 MP): a decompression bomb.
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    return path


def _truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    _rgb(200, 200).save(buffer, "JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def _write(name, content):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        return path

    return make


def _lambda_model(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    return path


PHOTO = str(PHOTOS / "cat.bmp")
BAD_INPUTS = {
    "missing file": (lambda p: ["-i", str(p / "nothing.png")], "no image file"),
    "empty file": (lambda p: ["-i", str(_write("empty.png", b"")(p))], "empty"),
    "not an image": (lambda p: ["-i", str(_write("notes.jpg", b"hello, not a photo")(p))], "not an image"),
    "truncated": (lambda p: ["-i", str(_truncated_jpeg(p))], "truncated"),
    "oversized": (lambda p: ["-i", str(_huge_png(p))], "too large"),
    "unknown model": (lambda p: ["-i", PHOTO, "--model", "alexnet"], "Unknown model"),
    "missing model file": (lambda p: ["-i", PHOTO, "--model", str(p / "mine.keras")], "no model file"),
    "refused model file": (lambda p: ["-i", PHOTO, "--model", str(_lambda_model(p))], "refused"),
    "unknown layer": (lambda p: ["-i", PHOTO, *FAST, "--layer", "block99"], "not a spatial layer"),
    "non-spatial layer": (lambda p: ["-i", PHOTO, *FAST, "--layer", "predictions"], "not a spatial layer"),
    "unknown class label": (lambda p: ["-i", PHOTO, *FAST, "--class", "unicorn"], "Unknown class"),
    "class out of range": (lambda p: ["-i", PHOTO, *FAST, "--class", "1000"], "out of range"),
    "unknown method": (lambda p: ["-i", PHOTO, "--method", "magiccam"], "Unknown method"),
    "unknown preprocessing": (lambda p: ["-i", PHOTO, "--model", str(_lambda_model(p)), "--preprocess", "bgr"], "refused|Unknown preprocessing"),
    "no input": (lambda p: [], "--input"),
    "unknown flag": (lambda p: ["-i", PHOTO, "--colour", "red"], "unrecognized"),
}


@needs_weights
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line(tmp_path, case, capfd):
    make_args, expected = BAD_INPUTS[case]
    args = make_args(tmp_path)
    try:
        status = main(args)
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    import re
    assert re.search(expected, lines[0], re.IGNORECASE), lines[0]


@needs_weights
def test_a_real_process_prints_one_clean_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dashboard.cli", "-i", str(_truncated_jpeg(tmp_path))],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


@needs_weights
def test_figure_json_and_maps(tmp_path, capsys):
    figure, maps = tmp_path / "figure.png", tmp_path / "maps.npz"
    args = ["-i", PHOTO, "-l", "block_13_expand_relu", "-l", "out_relu", "--class", "tabby",
            "-o", str(figure), "--save-map", str(maps), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["predictions"][0]["label"] == "Egyptian_cat"
    assert report["class_index"] == 281 and report["label"] == "tabby"
    assert report["layers"] == ["block_13_expand_relu", "out_relu"] and report["method"] == "gradcam"
    assert report["timings"]["total"] > 0
    saved = np.load(maps)
    assert saved["out_relu/raw"].shape == (7, 7) and saved["block_13_expand_relu/raw"].shape == (14, 14)
    assert saved["out_relu/map"].shape == (341, 512)
    with Image.open(figure) as image:
        assert image.width > 2 * image.height  # original | two overlays, side by side


@needs_weights
def test_list_layers(capsys):
    assert main(["--list-layers"]) == 0
    layers = capsys.readouterr().out.split()
    assert layers[-1] == "out_relu" and "block_6_expand_relu" in layers and "predictions" not in layers
