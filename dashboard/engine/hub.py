"""keras-hub image classifiers (ViT, DeiT, Swin, ...): presets, registration, preprocessing.

keras-hub is imported only when a model needs it (it pulls in tensorflow-text: about 2 s). Its
classes register themselves with Keras on import, so a saved keras-hub `.keras` file then loads
in Keras' safe mode like any other; custom code stays refused.
"""

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import limits
from .errors import InputError

HANDLES = ("kaggle://", "hf://", "modelscope://")


def is_handle(text: str) -> bool:
    return text.startswith(HANDLES)


def register_if_named(config: dict) -> None:
    """Import keras-hub when a saved model's configuration names one of its classes."""
    if "keras_hub" in json.dumps(config):
        import keras_hub  # noqa: F401  (registers its classes)


@contextmanager
def uncompiled():
    """keras-hub tasks compile themselves when built (an optimizer, hence a variable): while the
    declared weights are counted in a scope that creates none, building must not compile."""
    task = sys.modules.get("keras_hub.src.models.task")
    if task is None:
        yield
        return
    classes, found = [task.Task], []
    while classes:  # ImageClassifier and others define their own compile
        cls = classes.pop()
        classes += cls.__subclasses__()
        if "compile" in vars(cls):
            found.append((cls, vars(cls)["compile"]))
    for cls, _ in found:
        cls.compile = lambda self, *args, **kwargs: None
    try:
        yield
    finally:
        for cls, original in found:
            cls.compile = original


def is_task(network) -> bool:
    return type(network).__module__.startswith("keras_hub.")


def preprocessing(network):
    """A keras-hub classifier's own pixel scaling (its image converter: x * scale + offset, per
    channel), for a batch of 0..255 RGB pixels already resized to the input; None for other models."""
    converter = getattr(getattr(network, "preprocessor", None), "image_converter", None)
    if not is_task(network) or converter is None:
        return None
    scale = np.asarray(1.0 if converter.scale is None else converter.scale, np.float32)
    offset = np.asarray(0.0 if converter.offset is None else converter.offset, np.float32)
    return lambda batch: batch * scale + offset


def from_preset(source):
    """An image classifier from a keras-hub preset: a local folder (saved with `save_to_preset`)
    or, with internet, a handle such as kaggle://keras/vit/keras/vit_base_patch16_224_imagenet."""
    if isinstance(source, Path):
        _check_folder(source)
    import keras_hub

    try:
        return keras_hub.models.ImageClassifier.from_preset(str(source))
    except Exception as error:  # offline, unknown preset, a backbone without a task...
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise InputError(f"The keras-hub preset {source} could not be loaded as an image classifier ({first}).") from None


def _check_folder(folder: Path) -> None:
    """A preset folder's configuration and weights checked against the limits before anything is built."""
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder.name} is a folder but not a keras-hub preset (it has no config.json).")
    if not (folder / "task.json").is_file():
        raise InputError(f"The preset {folder.name} holds a backbone without a classifier head (no task.json): "
                         "save the ImageClassifier with save_to_preset.")
    for name in ("config.json", "task.json", "preprocessor.json"):
        if (folder / name).is_file() and (folder / name).stat().st_size > limits.CONFIG_BYTES:
            raise InputError(f"The preset's {name} is over the {limits.CONFIG_BYTES // limits.MB} MB limit for a configuration.")
    import h5py

    for name in ("model.weights.h5", "task.weights.h5"):
        if (folder / name).is_file():
            with h5py.File(folder / name, "r") as file:
                limits.check_hdf5(file, name)
