"""Grad-CAM Explorer's engine: pure Python + TensorFlow/Keras, no Streamlit."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off stderr

from . import metrics  # noqa: E402
from .errors import InputError  # noqa: E402
from .explainer import Explainer, Explanation  # noqa: E402
from .images import read_photo  # noqa: E402
from .methods import ATTENTION, METHODS, SLOW, TITLES  # noqa: E402
from .models import DEFAULT_MODEL, PREPROCESS_MODES, ZOO, Model, imagenet_labels, load_model, shipped_models  # noqa: E402

__all__ = [
    "ATTENTION", "DEFAULT_MODEL", "METHODS", "PREPROCESS_MODES", "SLOW", "TITLES", "ZOO",
    "Explainer", "Explanation", "InputError", "Model",
    "imagenet_labels", "load_model", "metrics", "read_photo", "shipped_models",
]
