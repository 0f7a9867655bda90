"""Models: the keras.applications zoo, a user's .keras/.h5 file, or a model in memory.

A `Model` bundles what explaining needs besides the network itself: how to turn a
photo into the network's input, and the class names.
"""

import codecs
import functools
import json
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import keras
import numpy as np
from keras.src.backend.config import keras_home
from keras.src.utils import file_utils
from PIL import Image

from . import graph, hub, legacy, limits
from .errors import InputError, plural
from .head import Head, find_head


@dataclass(frozen=True)
class ZooEntry:
    title: str
    builder: str  # the keras.applications constructor
    module: str  # the keras.applications module whose preprocess_input the model expects
    size: int  # input side in pixels
    download_mb: float  # size of the ImageNet weights file
    weights_file: str  # its name in the Keras cache ($KERAS_HOME/models)
    options: dict = field(default_factory=dict)

    @property
    def cached(self) -> bool:
        """True when the ImageNet weights are already in the local Keras cache (no download needed)."""
        return (Path(keras_home()) / "models" / self.weights_file).is_file()


ZOO = {
    "mobilenet_v2": ZooEntry("MobileNetV2", "MobileNetV2", "mobilenet_v2", 224, 14,
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
    "mobilenet": ZooEntry("MobileNet 0.25 (128 px)", "MobileNet", "mobilenet", 128, 2, "mobilenet_2_5_128_tf.h5",
                          {"alpha": 0.25}),
    "vgg16": ZooEntry("VGG16", "VGG16", "vgg16", 224, 528, "vgg16_weights_tf_dim_ordering_tf_kernels.h5"),
    "vgg19": ZooEntry("VGG19", "VGG19", "vgg19", 224, 549, "vgg19_weights_tf_dim_ordering_tf_kernels.h5"),
    "resnet50": ZooEntry("ResNet50", "ResNet50", "resnet50", 224, 98, "resnet50_weights_tf_dim_ordering_tf_kernels.h5"),
    "efficientnet_b0": ZooEntry("EfficientNetB0", "EfficientNetB0", "efficientnet", 224, 29, "efficientnetb0.h5"),
    "densenet121": ZooEntry("DenseNet121", "DenseNet121", "densenet", 224, 33,
                            "densenet121_weights_tf_dim_ordering_tf_kernels.h5"),
    "inception_v3": ZooEntry("InceptionV3", "InceptionV3", "inception_v3", 299, 92,
                             "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"),
    "xception": ZooEntry("Xception", "Xception", "xception", 299, 88, "xception_weights_tf_dim_ordering_tf_kernels.h5"),
    "convnext_tiny": ZooEntry("ConvNeXtTiny", "ConvNeXtTiny", "convnext", 224, 110, "convnext_tiny.h5"),
}
DEFAULT_MODEL = "mobilenet_v2"
# Models the project trains and ships (dashboard/demo/train.py): each <name>.keras has a <name>.json
# card with its title, labels and preprocessing. They need no download.
SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "assets" / "models"


@functools.cache  # the files ship with the app and do not change while it runs
def shipped_models() -> dict:
    """name -> card (title, labels, preprocess, measured accuracy) of the models in assets/models."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(SHIPPED_MODELS.glob("*.json"))
            if path.with_suffix(".keras").is_file()}
PREPROCESS_MODES = ("tf", "caffe", "torch", "unit", "none")  # unit: x / 255, for models trained on 0..1 pixels
_COLOUR_MODES = ("caffe", "torch")  # ImageNet means per colour channel: they need 3 channels
TEACHABLE_MACHINE_PREPROCESS = "tf"  # Teachable Machine scales pixels to -1..1


@dataclass
class Model:
    """A Keras classifier plus how to feed it and what its outputs mean."""

    network: keras.Model
    preprocess: Callable[[np.ndarray], np.ndarray]  # float32 batch in 0..255 RGB -> network input
    labels: list[str]
    name: str
    head: Head = None  # the output explained, and how its scores are read
    input_shape: tuple = None  # (height, width, channels) photos are resized to

    def __post_init__(self):
        if self.input_shape is None:
            self.input_shape = _input_shape(self.network, None)
        if self.head is None:
            self.head = find_head(self.network, called=_calls(self.network, self.input_shape))

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the photo is resized to."""
        return self.input_shape[:2]

    @property
    def channels(self) -> int:
        return self.input_shape[2]

    def to_raw_input(self, photo: np.ndarray) -> np.ndarray:
        """The whole photo (no crop) resized to the network's input: (h, w, c) float32 pixels, 0..255."""
        height, width = self.input_size
        image = Image.fromarray(photo)
        if self.channels == 1:
            image = image.convert("L")
        resized = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
        return resized.reshape(height, width, self.channels)

    def to_input(self, photo: np.ndarray) -> np.ndarray:
        """The network's input for a photo: resized, preprocessed, as a batch of 1."""
        return self.preprocessed(self.to_raw_input(photo)[None])

    def preprocessed(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessing applied to a copy: keras' preprocess_input works in place on float arrays."""
        return np.asarray(self.preprocess(np.array(batch, dtype=np.float32)), dtype=np.float32)


def load_model(source=DEFAULT_MODEL, preprocess=None, labels=None, weights="imagenet", output=None,
               input_shape=None) -> Model:
    """A zoo name, a model file, a Teachable Machine export or a keras.Model -> Model.

    Files: .keras, .h5 (Keras 3 or Keras 2), or Teachable Machine's converted_keras.zip
    (a keras_model.h5 with labels.txt beside it counts as one too). `preprocess` is "tf",
    "caffe", "torch", "none" or a callable (zoo models and Teachable Machine exports bring
    their own); `labels` are class names, a list or a labels.txt path; `output` picks the
    output to explain (name or index; default the first classification output);
    `input_shape` (h, w, c) is needed only by subclassed models never called before.
    `weights=None` builds a zoo model untrained, for structure and timing.
    """
    if isinstance(source, Model):
        return source
    if isinstance(labels, (str, Path)):
        labels = read_labels(Path(labels))
    if isinstance(source, keras.Model):
        return _wrap(source, preprocess, labels, source.name, output, input_shape)
    text = str(source)
    if hub.is_handle(text):
        return _wrap(hub.from_preset(text), preprocess, labels, text.rstrip("/").split("/")[-1], output)
    if text in ZOO:
        return _zoo_model(text, weights, preprocess, labels)
    if text in shipped_models():
        card = shipped_models()[text]
        network = _read_model_file(SHIPPED_MODELS / f"{text}.keras")
        return _wrap(network, preprocess or card["preprocess"], labels or card["labels"], text, output)
    path = Path(text)
    if path.is_dir():
        network = hub.from_preset(path)
        return _wrap(network, preprocess, labels, path.name, output)
    if path.suffix.lower() == ".zip":
        network, zipped_labels = _read_teachable_machine_zip(path)
        return _wrap(network, preprocess or TEACHABLE_MACHINE_PREPROCESS, labels or zipped_labels, path.stem, output)
    if path.suffix.lower() in (".keras", ".h5", ".hdf5"):
        beside = path.with_name("labels.txt")
        teachable = path.name == "keras_model.h5" and beside.is_file()
        if teachable and labels is None:
            labels = read_labels(beside)
        default = TEACHABLE_MACHINE_PREPROCESS if teachable else None  # a keras-hub model brings its own
        return _wrap(_read_model_file(path), preprocess or default, labels, path.stem, output)
    raise InputError(
        f"Unknown model '{text}': use one of {', '.join([*ZOO, *shipped_models()])}, a path to a .keras, .h5 "
        "or Teachable Machine .zip file, or a keras-hub preset (its folder, or a kaggle:// or hf:// handle)."
    )


def read_labels(source, name: str = "labels.txt") -> list[str]:
    """labels.txt (a path, bytes or text): one name per line, or Teachable Machine's "index name"
    lines ("0 Cat" -> "Cat"). Bytes may be UTF-8 (with or without the BOM Windows Notepad writes),
    UTF-16 with its BOM, or Latin-1."""
    if isinstance(source, Path):
        if not source.is_file():
            raise InputError(f"There is no labels file at {source}.")
        name, source = source.name, limits.read_file(source, limits.LABELS_BYTES, "labels file")
    if isinstance(source, bytes):
        limits.check_size(len(source), limits.LABELS_BYTES, f"labels file {name}")
        source = _decode_text(source)
    limits.check_labels_text(source, name)
    lines = [line.strip() for line in source.lstrip("\ufeff").splitlines() if line.strip()]
    numbered = [line.split(maxsplit=1) for line in lines]
    if lines and all(len(parts) == 2 and parts[0] == str(i) for i, parts in enumerate(numbered)):
        return [parts[1] for parts in numbered]
    return lines


def _decode_text(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")  # the BOM says which byte order
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # Windows' "ANSI" files for Western languages: every byte is a letter


def _zoo_model(name, weights, preprocess, labels) -> Model:
    entry = ZOO[name]
    build = getattr(keras.applications, entry.builder)
    shape = (entry.size, entry.size, 3)
    _fetched.path = None
    try:
        network = build(weights=weights, input_shape=shape, **entry.options)
    except Exception as error:  # a failed download surfaces as many exception types
        cached = _fetched.path
        if cached and Path(cached).is_file():
            raise InputError(f"The cached weights file {cached} is damaged ({_first_line(error)}): delete it, "
                             "and it will be downloaded again.") from None
        raise InputError(f"Could not load the ImageNet weights for {entry.title}: they are not in this server's "
                         "Keras cache and could not be downloaded.") from None
    module = getattr(keras.applications, entry.module)
    return Model(
        network=network,
        preprocess=_preprocessing(preprocess) if preprocess else module.preprocess_input,
        labels=list(labels) if labels else imagenet_labels(),
        name=name,
    )


def _read_model_file(path: Path) -> keras.Model:
    if not path.is_file():
        raise InputError(f"There is no model file at {path}.")
    if path.suffix.lower() in (".h5", ".hdf5"):
        network = legacy.load_h5(path, path.name)
    else:
        network = _read_keras_file(path)
    if not isinstance(network, keras.Model):
        raise InputError(f"The file {path.name} does not hold a Keras model.")
    return network


def _read_keras_file(path: Path) -> keras.Model:
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive
        raise InputError(f"{path.name} is not a readable .keras file (is it damaged or cut short?).")
    try:
        config = _keras_file_config(path)
        hub.register_if_named(config)
        # safe_mode refuses Lambda layers and anything else that would run code from the file.
        with hub.uncompiled():
            limits.check_declared_weights(lambda: keras.saving.deserialize_keras_object(config, safe_mode=True), path.name)
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except InputError:
        raise
    except Exception as error:
        message = str(error)
        if "Lambda" in message or "safe_mode" in message or "arbitrary code" in message:
            reason = "it contains a Lambda layer, which could run arbitrary code"
        elif "Could not locate" in message or "Unknown" in message or "custom" in message.lower():
            reason = "it needs custom code (an unknown layer or object) that we do not run"
        else:
            # Say what Keras said, without the server's temporary folder in it.
            reason = f"it is not a Keras model we can read ({_first_line(error).replace(str(path.parent) + '/', '')})"
        raise InputError(f"The model file {path.name} was refused: {reason}.") from None


def _keras_file_config(path: Path) -> dict:
    """A .keras archive's configuration, after its members' inflated sizes and its weights file's
    declared datasets are checked against the limits."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        inflated = sum(info.file_size for info in members.values())
        limits.check_inflated(inflated, limits.ZIP_MEMBER_BYTES, f"model file {path.name}")
        if "config.json" not in members:
            raise InputError(f"The model file {path.name} was refused: it holds no config.json.")
        config = json.loads(limits.read_member(archive, members["config.json"], limits.CONFIG_BYTES, "configuration"))
        if "model.weights.h5" in members:
            with archive.open("model.weights.h5") as weights, h5py.File(weights, "r") as file:
                limits.check_hdf5(file, path.name)
    return config


def _read_teachable_machine_zip(path: Path) -> tuple[keras.Model, list[str] | None]:
    """Teachable Machine's "Export model > Tensorflow > Keras" download: keras_model.h5 and labels.txt."""
    if not path.is_file():
        raise InputError(f"There is no model file at {path}.")
    try:
        with zipfile.ZipFile(path) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
            models = [info for info in files if info.filename.lower().endswith((".h5", ".hdf5"))]
            labels = [info for info in files if Path(info.filename).name == "labels.txt"]
            if len(models) != 1:
                held = f" ({' and '.join(info.filename for info in models)})" if models else ""
                raise InputError(f"{path.name} should hold one .h5 model (Teachable Machine's keras_model.h5); "
                                 f"it holds {plural(len(models), 'model file')}{held}.")
            if len(labels) > 1:
                raise InputError(f"{path.name} holds {len(labels)} labels files "
                                 f"({' and '.join(info.filename for info in labels)}): which one is meant?")
            model = models[0]
            limits.check_inflated(model.file_size, limits.ZIP_MEMBER_BYTES, f"model file {model.filename}")
            names = read_labels(limits.read_member(archive, labels[0], limits.LABELS_BYTES, "labels file"),
                                labels[0].filename) if labels else None
            # Inflated to a temporary file, not to memory: its weights are then read once, from disk.
            unpacked = tempfile.TemporaryFile()
            with archive.open(model) as member:
                shutil.copyfileobj(member, unpacked)
    except zipfile.BadZipFile:
        raise InputError(f"{path.name} is not a readable zip file (is it damaged or cut short?).") from None
    with unpacked:
        return legacy.load_h5(unpacked, path.name), names


def _input_shape(network: keras.Model, given) -> tuple:
    """(h, w, c) for the photo: the model's own input shape, else the one it was built or called with,
    else `given`; free dimensions become 224."""
    try:
        shape = network.input_shape
    except AttributeError:  # subclassed models have no symbolic input
        shape = (getattr(network, "_build_shapes_dict", None) or {}).get("input_shape")
    if given is not None:
        shape = (None, *given)
    if shape is None:
        raise InputError(
            f"{network.name} has no known input shape (a subclassed model that was never called): "
            "give input_shape=(height, width, channels), or save it as a functional model."
        )
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] not in (1, 3):
        raise InputError(
            f"The model takes input of shape {shape}; only image models with one (H, W, 1 or 3) input are supported."
        )
    return (shape[1] or 224, shape[2] or 224, shape[3])


def _calls(network: keras.Model, input_shape: tuple):
    """For models without a graph (subclassed): the layers their call runs, with output shapes."""
    if getattr(network, "outputs", None):
        return None
    try:
        return graph.called_layers(network, input_shape)
    except Exception as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{network.name} could not be called on a {input_shape} input ({reason}): give the input_shape it "
            "expects, or save it as a functional model."
        ) from None


def _wrap(network: keras.Model, preprocess, labels, name, output=None, input_shape=None) -> Model:
    preprocess = preprocess or hub.preprocessing(network)
    shape = _input_shape(network, input_shape)
    calls = _calls(network, shape)
    head = find_head(network, output, called=calls)
    if labels is None and hub.is_task(network) and head.classes == 1000:
        labels = imagenet_labels()  # keras-hub's ImageNet presets
    if labels is None:
        labels = ["negative", "positive"] if head.kind == "binary" else [str(index) for index in range(head.classes)]
    elif len(labels) != head.classes:
        side = " (one output unit: a negative and a positive side)" if head.kind == "binary" else ""
        raise InputError(f"The model has {plural(head.classes, 'class')}{side} but {plural(len(labels), 'label')} "
                         f"{'was' if len(labels) == 1 else 'were'} given.")
    return Model(network, _preprocessing(preprocess or "none", shape[2]), list(labels), name, head, shape)


def _preprocessing(mode, channels: int = 3) -> Callable[[np.ndarray], np.ndarray]:
    if callable(mode):
        return mode
    if mode == "none":
        return lambda batch: batch
    if mode == "unit":
        return lambda batch: batch / 255.0
    if mode in _COLOUR_MODES and channels != 3:
        raise InputError(f"'{mode}' preprocessing subtracts a mean per colour channel, but this model takes "
                         f"{plural(channels, 'channel')}: use tf, unit or none.")
    if mode in PREPROCESS_MODES:
        return lambda batch: keras.applications.imagenet_utils.preprocess_input(batch.copy(), mode=mode)
    raise InputError(f"Unknown preprocessing '{mode}': use one of {', '.join(PREPROCESS_MODES)}.")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else type(error).__name__


# Keras looks for downloaded weights in $KERAS_HOME/models, unless that folder is read-only: then it
# looks in /tmp/.keras and downloads there. A read-only cache (a shared or mounted one) that holds the
# file should be used as it is. We also note which file was fetched, to name it if it is damaged.
_fetched = threading.local()
_keras_get_file = file_utils.get_file


def _get_file(fname=None, origin=None, *args, cache_subdir="datasets", cache_dir=None, **kwargs):
    home = keras_home()
    cached = Path(home) / cache_subdir / fname if fname and cache_dir is None else None
    if cached is not None and cached.is_file() and not os.access(home, os.W_OK):
        path = str(cached)
    else:
        path = _keras_get_file(fname, origin, *args, cache_subdir=cache_subdir, cache_dir=cache_dir, **kwargs)
    _fetched.path = path
    return path


file_utils.get_file = _get_file


_IMAGENET_LABELS: list[str] = []


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, from the same file keras' decode_predictions uses."""
    if not _IMAGENET_LABELS:
        # One-hot rows through decode_predictions: the normal Keras path (and cache) for the class index.
        decoded = keras.applications.imagenet_utils.decode_predictions(np.eye(1000), top=1)
        _IMAGENET_LABELS.extend(row[0][1] for row in decoded)
    return _IMAGENET_LABELS
