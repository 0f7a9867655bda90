"""The dashboard's cached calls into the engine. Models and explainers are cached per process
(st.cache_resource); photos, predictions and maps per input (st.cache_data), so moving the
opacity slider or switching colormap never reaches the model."""

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st
from matplotlib.figure import Figure
from streamlit.runtime.scriptrunner import script_runner

from dashboard.engine import Explainer, load_model, read_photo
from dashboard.engine.render import colorize, figure_png

# After every run Streamlit calls keras.backend.clear_session(), which empties TensorFlow's
# kernel cache: the next call of every compiled pass is re-optimised (measured: 0.55 s instead
# of 0.06 s for MobileNetV2, on every rerun). Our models live across runs in st.cache_resource,
# so that reset only costs us; skip it. (We draw with matplotlib's Figure, never pyplot, so the
# other half of that clean-up has nothing to do either.)
if hasattr(script_runner, "_clean_problem_modules"):
    script_runner._clean_problem_modules = lambda: None


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@st.cache_data(show_spinner=False, max_entries=32)
def photo(photo_digest: str, _data: bytes) -> np.ndarray:
    return read_photo(_data)


@st.cache_resource(show_spinner=False, max_entries=4)
def named_explainer(name: str) -> Explainer:
    """A zoo model (downloaded once) or a model shipped in assets/models."""
    explainer = Explainer(load_model(name))
    explainer.prepare_all_layers()  # switching layers then never waits for a trace
    return explainer


@st.cache_resource(show_spinner=False, max_entries=4)
def file_explainer(file_digest: str, _data: bytes, file_name: str, labels_digest: str | None, _labels: bytes | None,
                   preprocess: str | None, output: str | None) -> Explainer:
    """A user's model file (.keras, .h5 or a Teachable Machine .zip), written under its own name so
    messages and the model's name are the user's, with their labels.txt beside it."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(file_name).name
        path.write_bytes(_data)
        labels = None
        if _labels is not None:
            labels = Path(folder) / "labels.txt"
            labels.write_bytes(_labels)
        explainer = Explainer(load_model(str(path), preprocess=preprocess, labels=labels, output=output))
    explainer.prepare_all_layers()
    return explainer


@st.cache_data(show_spinner=False, max_entries=64)
def predict(model_key: str, photo_digest: str, _explainer: Explainer, _photo: np.ndarray, top: int = 5):
    return _explainer.predict(_photo, top=top)


@st.cache_data(show_spinner=False, max_entries=128)
def explain(model_key, photo_digest, layers: tuple, class_index: int, method: str, counterfactual: bool,
            _explainer: Explainer, _photo: np.ndarray, _progress=None, keep_activations: bool = False):
    return _explainer.explain(_photo, list(layers), class_index, method, counterfactual,
                              progress=_progress, keep_activations=keep_activations)


@st.cache_data(show_spinner=False, max_entries=64)
def heatmap_with_colour_bar(key: tuple, _raw: np.ndarray, colormap: str) -> bytes:
    """The raw map at layer resolution, with its scale: a PNG, cached because matplotlib is slow."""
    figure = Figure(figsize=(4.2, 3.4))  # no layout engine: it doubles the drawing time
    axes = figure.subplots()
    image = axes.imshow(_raw, cmap=colormap, vmin=0)
    axes.set_title(f"raw map, {_raw.shape[0]}x{_raw.shape[1]} (after ReLU)", fontsize=9)
    axes.axis("off")
    figure.colorbar(image, ax=axes, shrink=0.85)
    return figure_png(figure, dpi=110)


def enlarge(image: np.ndarray, height: int = 240) -> np.ndarray:
    """Nearest-neighbour enlargement, so a 7x7 map shows its cells instead of a blur."""
    factor = max(1, height // image.shape[0])
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def diverging(values: np.ndarray) -> np.ndarray:
    """Signed values as colours: blue below zero, red above, white at zero."""
    top = float(np.abs(values).max()) or 1.0
    return colorize((values / top + 1) / 2, "coolwarm")
