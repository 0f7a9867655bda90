"""Models: the keras.applications zoo, a user's .keras/.h5 file, or a model in memory.

A `Model` bundles what explaining needs besides the network itself: how to turn a
photo into the network's input, and the class names.
"""

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np
from PIL import Image

from .errors import InputError


@dataclass(frozen=True)
class ZooEntry:
    title: str
    builder: str  # the keras.applications constructor
    module: str  # the keras.applications module whose preprocess_input the model expects
    size: int  # input side in pixels
    download_mb: float  # size of the ImageNet weights file
    options: dict = field(default_factory=dict)


ZOO = {
    "mobilenet_v2": ZooEntry("MobileNetV2", "MobileNetV2", "mobilenet_v2", 224, 14),
    "mobilenet": ZooEntry("MobileNet 0.25 (128 px)", "MobileNet", "mobilenet", 128, 2, {"alpha": 0.25}),
    "vgg16": ZooEntry("VGG16", "VGG16", "vgg16", 224, 528),
    "vgg19": ZooEntry("VGG19", "VGG19", "vgg19", 224, 549),
    "resnet50": ZooEntry("ResNet50", "ResNet50", "resnet50", 224, 98),
    "efficientnet_b0": ZooEntry("EfficientNetB0", "EfficientNetB0", "efficientnet", 224, 29),
    "densenet121": ZooEntry("DenseNet121", "DenseNet121", "densenet", 224, 33),
    "inception_v3": ZooEntry("InceptionV3", "InceptionV3", "inception_v3", 299, 92),
    "xception": ZooEntry("Xception", "Xception", "xception", 299, 88),
    "convnext_tiny": ZooEntry("ConvNeXtTiny", "ConvNeXtTiny", "convnext", 224, 110),
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
PREPROCESS_MODES = ("tf", "caffe", "torch", "none")


@dataclass
class Model:
    """A Keras classifier plus how to feed it and what its outputs mean."""

    network: keras.Model
    preprocess: Callable[[np.ndarray], np.ndarray]  # float32 batch in 0..255 RGB -> network input
    labels: list[str]
    name: str

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) the photo is resized to; 224 where the network accepts any size."""
        _, height, width, _ = self.network.input_shape
        return (height or 224, width or 224)

    @property
    def channels(self) -> int:
        return self.network.input_shape[-1] or 3

    def to_input(self, photo: np.ndarray) -> np.ndarray:
        """The whole photo (no crop) resized to the network's input, preprocessed, as a batch of 1."""
        height, width = self.input_size
        image = Image.fromarray(photo)
        if self.channels == 1:
            image = image.convert("L")
        resized = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
        batch = resized.reshape(1, height, width, self.channels)
        return np.asarray(self.preprocess(batch), dtype=np.float32)


def load_model(source=DEFAULT_MODEL, preprocess=None, labels=None, weights="imagenet") -> Model:
    """A zoo name, a path to a .keras/.h5 file, or a keras.Model -> Model.

    `preprocess` is "tf", "caffe", "torch", "none" or a callable (zoo models bring their
    own); `labels` are class names (default: the class indices). `weights=None` builds a
    zoo model untrained, for structure and timing.
    """
    if isinstance(source, Model):
        return source
    if isinstance(source, keras.Model):
        return _wrap(source, preprocess, labels, source.name)
    text = str(source)
    if text in ZOO:
        return _zoo_model(text, weights, preprocess, labels)
    if text in shipped_models():
        card = shipped_models()[text]
        network = _read_model_file(SHIPPED_MODELS / f"{text}.keras")
        return _wrap(network, preprocess or card["preprocess"], labels or card["labels"], text)
    if text.endswith((".keras", ".h5", ".hdf5")):
        return _wrap(_read_model_file(Path(text)), preprocess, labels, Path(text).stem)
    raise InputError(
        f"Unknown model '{text}': use one of {', '.join([*ZOO, *shipped_models()])}, or a path to a .keras or .h5 file."
    )


def _zoo_model(name, weights, preprocess, labels) -> Model:
    entry = ZOO[name]
    build = getattr(keras.applications, entry.builder)
    shape = (entry.size, entry.size, 3)
    try:
        network = build(weights=weights, input_shape=shape, **entry.options)
    except Exception as error:  # a failed download surfaces as many exception types
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"Could not load the ImageNet weights for {entry.title} ({reason}).") from None
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
    try:
        # safe_mode refuses Lambda layers and anything else that would run code from the file.
        network = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        message = str(error)
        if "Lambda" in message or "safe_mode" in message or "arbitrary code" in message:
            reason = "it contains a Lambda layer, which could run arbitrary code"
        elif "Could not locate" in message or "Unknown" in message or "custom" in message.lower():
            reason = "it needs custom code (an unknown layer or object) that we do not run"
        else:
            reason = f"it is not a Keras model we can read ({message.splitlines()[0][:160] if message else type(error).__name__})"
        raise InputError(f"The model file {path.name} was refused: {reason}.") from None
    if not isinstance(network, keras.Model):
        raise InputError(f"The file {path.name} does not hold a Keras model.")
    return network


def _wrap(network: keras.Model, preprocess, labels, name) -> Model:
    shape = network.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[-1] not in (1, 3):
        raise InputError(
            f"The model takes input of shape {shape}; only image models with one (H, W, 1 or 3) input are supported."
        )
    classes = network.output_shape[-1]
    if labels is None:
        labels = [str(index) for index in range(classes)]
    elif len(labels) != classes:
        raise InputError(f"The model has {classes} classes but {len(labels)} labels were given.")
    return Model(network, _preprocessing(preprocess or "none"), list(labels), name)


def _preprocessing(mode) -> Callable[[np.ndarray], np.ndarray]:
    if callable(mode):
        return mode
    if mode == "none":
        return lambda batch: batch
    if mode in PREPROCESS_MODES:
        return lambda batch: keras.applications.imagenet_utils.preprocess_input(batch.copy(), mode=mode)
    raise InputError(f"Unknown preprocessing '{mode}': use one of {', '.join(PREPROCESS_MODES)}.")


_IMAGENET_LABELS: list[str] = []


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, from the same file keras' decode_predictions uses."""
    if not _IMAGENET_LABELS:
        # One-hot rows through decode_predictions: the normal Keras path (and cache) for the class index.
        decoded = keras.applications.imagenet_utils.decode_predictions(np.eye(1000), top=1)
        _IMAGENET_LABELS.extend(row[0][1] for row in decoded)
    return _IMAGENET_LABELS
