"""Small files that once cost gigabytes or gave a wrong answer, made on the fly (nothing is stored).

Each `Case` is a CLI command line and what its answer must say; `make(folder)` writes the files.
The same files are dropped into the dashboard by rss_probe.py's "app-cases" mode."""

import codecs
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

GIANT_UNITS = 1_000_000_000  # a Dense layer of 4 x 1e9 weights and 1e9 biases: 20 GB of float32


@dataclass
class Case:
    argv: list
    says: str  # in the one-line error, or in the JSON/printout when status is 0
    status: int = 2
    model: str | None = None  # the model file, also dropped into the dashboard
    photo: str | None = None  # the photo, also dropped into the dashboard


def _tiny_model():
    import keras

    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    scores = keras.layers.Dense(2, activation="softmax", name="scores")(keras.layers.GlobalAveragePooling2D()(conv))
    return keras.Model(inputs, scores, name="tiny")


def _giant_config(config: dict) -> dict:
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["units"] = GIANT_UNITS
    return config


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if isinstance(data, int):  # that many zero bytes, streamed: they compress to almost nothing
                with archive.open(name, "w", force_zip64=True) as member:
                    for _ in range(data >> 20):
                        member.write(bytes(1 << 20))
            else:
                archive.writestr(name, data)
    return path


def make(folder: Path) -> dict[str, Case]:
    folder.mkdir(parents=True, exist_ok=True)
    model = _tiny_model()
    good_h5 = folder / "good.h5"
    model.save(good_h5)
    h5_bytes = good_h5.read_bytes()
    photo = folder / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photo)
    p = str(photo)

    giant_h5 = folder / "giant.h5"
    giant_h5.write_bytes(h5_bytes)
    with h5py.File(giant_h5, "r+") as file:
        file.attrs["model_config"] = json.dumps(_giant_config(json.loads(file.attrs["model_config"])))

    giant_keras = folder / "giant.keras"
    model.save(folder / "good.keras")
    with zipfile.ZipFile(folder / "good.keras") as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    members["config.json"] = json.dumps(_giant_config(json.loads(members["config.json"])))
    _zip(giant_keras, members)

    hollow = folder / "hollow.h5"  # declares a 2 GB dataset and stores none of it
    hollow.write_bytes(h5_bytes)
    with h5py.File(hollow, "r+") as file:
        file["model_weights"].create_dataset("unused", shape=(1 << 29,), dtype="float32")

    linked = folder / "linked.h5"
    linked.write_bytes(h5_bytes)
    with h5py.File(linked, "r+") as file:
        file["model_weights/elsewhere"] = h5py.ExternalLink(str(good_h5), "/model_weights")

    labels_bomb = _zip(folder / "labels_bomb.zip", {"keras_model.h5": h5_bytes, "labels.txt": 64 << 20})
    big_member = _zip(folder / "big_member.zip", {"keras_model.h5": 700 << 20, "labels.txt": "0 a\n1 b\n"})
    two_models = _zip(folder / "two_models.zip", {"a/keras_model.h5": h5_bytes, "b/keras_model.h5": h5_bytes})
    many_lines = folder / "many_lines.txt"
    many_lines.write_text("x\n" * 100_001)

    tall = folder / "tall.png"  # 10 px wide, 10,000 px tall
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (10_000, 10, 3), dtype=np.uint8)).save(tall)
    for name, bad in (("nan.tif", np.nan), ("inf.tif", np.inf)):
        values = np.random.default_rng(2).random((40, 50)).astype(np.float32)
        values[3, 4] = bad
        Image.fromarray(values, "F").save(folder / name)
    pages = [Image.new("RGB", (64, 48), colour) for colour in ("red", "green", "blue")]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])

    for name, data in (("bom.txt", codecs.BOM_UTF8 + "0 Cat\n1 Dog\n".encode()),
                       ("utf16.txt", "0 Café\n1 Crème\n".encode("utf-16")),
                       ("latin1.txt", "0 Café\n1 Crème\n".encode("latin-1"))):
        (folder / name).write_bytes(data)

    h5 = str(good_h5)
    return {
        "tall figure": Case(["-i", str(tall), "-m", h5, "-o", str(folder / "tall_figure.png")], "explained", 0, photo=str(tall)),
        "giant Dense in .h5": Case(["-i", p, "-m", str(giant_h5)], "asks for 19,073 MB of weights: the limit is 600 MB",
                                   model=str(giant_h5)),
        "giant Dense in .keras": Case(["-i", p, "-m", str(giant_keras)], "asks for 19,073 MB of weights: the limit is 600 MB",
                                      model=str(giant_keras)),
        "declared 2 GB dataset": Case(["-i", p, "-m", str(hollow)], "declares 2,048 MB of weights: the limit is 600 MB",
                                      model=str(hollow)),
        "external link": Case(["-i", p, "-m", str(linked)], "links to another file", model=str(linked)),
        "labels bomb in a zip": Case(["-i", p, "-m", str(labels_bomb)], "labels.txt inflates to 64 MB: the limit is 1 MB",
                                     model=str(labels_bomb)),
        "big model in a zip": Case(["-i", p, "-m", str(big_member)], "inflates to 700 MB: the limit is 616 MB",
                                   model=str(big_member)),
        "two models in a zip": Case(["-i", p, "-m", str(two_models)], "(a/keras_model.h5 and b/keras_model.h5)",
                                    model=str(two_models)),
        "100,001 labels": Case(["-i", p, "-m", h5, "--labels", str(many_lines)], "has 100,001 lines: the limit is 100,000"),
        "class ²": Case(["-i", p, "-m", h5, "--class", "²"], "Unknown class '²'"),
        "class ①": Case(["-i", p, "-m", h5, "--class", "①"], "Unknown class '①'"),
        "output ²": Case(["-i", p, "-m", h5, "--output-name", "²"], "no output named '²'"),
        "NaN pixel": Case(["-i", str(folder / "nan.tif"), "-m", h5], "1 pixel value that is not a number",
                          photo=str(folder / "nan.tif")),
        "inf pixel": Case(["-i", str(folder / "inf.tif"), "-m", h5], "1 pixel value that is not a number",
                          photo=str(folder / "inf.tif")),
        "multi-page TIFF": Case(["-i", str(folder / "pages.tif"), "-m", h5], "The file has 3 pages: the first is explained.",
                                0, photo=str(folder / "pages.tif")),
        "labels with a BOM": Case(["-i", p, "-m", h5, "--labels", str(folder / "bom.txt"), "--class", "Cat"],
                                  "explained: Cat (0)", 0),
        "UTF-16 labels": Case(["-i", p, "-m", h5, "--labels", str(folder / "utf16.txt"), "--class", "Crème"],
                              "explained: Crème (1)", 0),
        "Latin-1 labels": Case(["-i", p, "-m", h5, "--labels", str(folder / "latin1.txt"), "--class", "Café"],
                               "explained: Café (0)", 0),
    }
