"""HDF5 model files, including Keras 2 ones (Teachable Machine exports, tf.keras 2.x `model.save("x.h5")`).

Keras 3 reads the HDF5 format but not every Keras 2 configuration in it. We translate the
configuration (drop or map what Keras 3 no longer accepts), refuse anything that would run
code from the file, then build the model and read its weights the way Keras' own HDF5 loader
does, in safe mode.
"""

import copy
import json

import h5py
import keras
from keras.src.legacy.saving import legacy_h5_format, saving_options, saving_utils
from keras.src.saving import serialization_lib

from . import limits
from .errors import InputError

_MODELS = ("Sequential", "Functional", "Model")
_CODE = ("Lambda", "TFOpLambda", "SlicingOpLambda")  # Keras 2 layers that carry Python code or raw TF ops


def load_h5(source, name: str) -> keras.Model:
    """A path or a binary file object holding an HDF5 model -> keras.Model. `name` is the user's
    file name, for messages. What the file declares is checked against the limits first."""
    try:
        file = h5py.File(source, "r")
    except OSError:
        raise InputError(f"{name} is not a readable HDF5 model file (is it damaged or cut short?).") from None
    with file:
        limits.check_hdf5(file, name)
        config = limits.config_text(file, name)
        if config is None or "model_weights" not in file:
            raise InputError(f"{name} holds no Keras model (only weights, or not a Keras file at all).")
        try:
            config = json.loads(config)
        except (ValueError, RecursionError):
            raise InputError(f"{name} could not be rebuilt as a Keras model (its configuration is not valid JSON).") from None
        version = file.attrs.get("keras_version", b"")
        if (version.decode() if isinstance(version, bytes) else str(version)).startswith(("1.", "2.")):
            config = translate(config)
        refuse_code(config, name)
        try:
            with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(True):
                # model_from_config consumes the configuration it is given: the counting build gets a copy
                limits.check_declared_weights(lambda: saving_utils.model_from_config(copy.deepcopy(config)), name)
                network = saving_utils.model_from_config(config)
                legacy_h5_format.load_weights_from_hdf5_group(file["model_weights"], network)
        except InputError:
            raise
        except Exception as error:
            reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
            raise InputError(f"{name} could not be rebuilt as a Keras model ({reason}).") from None
    return network


def translate(node):
    """Keras 2 configuration -> one Keras 3 accepts, changed in place and returned."""
    if isinstance(node, list):
        for item in node:
            translate(item)
    elif isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict):
            if node.get("class_name") == "DepthwiseConv2D":
                config.pop("groups", None)  # Keras 2 stored groups=1; Keras 3 refuses the argument
            if node.get("class_name") == "Model":
                node["class_name"] = "Functional"  # Keras 2.2's name for it
            _renumber_model_calls(config)
            for key in ("input_layers", "output_layers"):
                # Keras 2 wrote a single input/output as a one-item list of [layer, node, tensor];
                # Keras 3 reads that as a list of outputs and the nesting no longer fits.
                value = config.get(key)
                if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
                    config[key] = value[0]
        for value in node.values():
            translate(value)
    return node


def _renumber_model_calls(config) -> None:
    """Keras 2 counted a nested model's own construction as its node 0, so its first call is
    node 1; Keras 3 numbers calls from 0. Shift references to nested models' nodes."""
    layers = config.get("layers")
    if not isinstance(layers, list):
        return
    models = {layer.get("name") or layer["config"].get("name") for layer in layers if layer.get("class_name") in _MODELS}
    for layer in layers:
        for node in layer.get("inbound_nodes") or []:
            for reference in node if isinstance(node, list) else []:
                if isinstance(reference, list) and reference[0] in models and reference[1] >= 1:
                    reference[1] -= 1


def refuse_code(config, name: str) -> None:
    """Refuse Lambda layers and layers Keras does not know (custom code) before anything is built."""
    for layer in _layers(config):
        kind = layer.get("class_name", "")
        if kind in _CODE:
            raise InputError(f"The model file {name} was refused: it contains a {kind} layer, which could run arbitrary code.")
        if kind not in _MODELS and not hasattr(keras.layers, kind):
            raise InputError(f"The model file {name} was refused: it needs custom code (an unknown layer '{kind}') that we do not run.")


def _layers(config):
    """Every layer configuration, nested models included."""
    yield config
    for layer in config.get("config", {}).get("layers", []) if isinstance(config.get("config"), dict) else []:
        yield from _layers(layer)
