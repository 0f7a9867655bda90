"""The dashboard's cached calls into the engine. Models and explainers are cached per process
(st.cache_resource); photos, predictions and maps per input in caches bounded in bytes and shared
by all sessions, so moving the opacity slider or switching colormap never reaches the model."""

import hashlib
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import script_runner

from dashboard.engine import Explainer, load_model, metrics, read_photo
from dashboard.engine.cache import SizedCache
from dashboard.engine.images import frames_note
from dashboard.engine.render import DISPLAY_SIDE, colour_bar_figure, figure_png, image_jpeg
from dashboard.engine.render import map_png as encode_map

# After every run Streamlit calls keras.backend.clear_session(), which empties TensorFlow's
# kernel cache: the next call of every compiled pass is re-optimised (measured: 0.55 s instead
# of 0.06 s for MobileNetV2, on every rerun). Our models live across runs in st.cache_resource,
# so that reset only costs us; skip it. (We draw with matplotlib's Figure, never pyplot, so the
# other half of that clean-up has nothing to do either.)
if hasattr(script_runner, "_clean_problem_modules"):
    script_runner._clean_problem_modules = lambda: None


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


# Shared by every session of this server, bounded in bytes (st.cache_data bounds only the count, and
# copies each value per hit). Identical requests made at once are computed once.
PHOTOS = SizedCache(192 << 20)  # working-size photos and their display JPEGs
RESULTS = SizedCache(640 << 20)  # predictions and explanations (maps at working size)
SANITY_SIDE = 320  # pixels: the sanity check's photo and maps (the model sees 224 px anyway)


def photo(photo_digest: str, data: bytes) -> np.ndarray:
    """The photo at its working size (long side <= images.WORKING_SIDE)."""
    return PHOTOS.get(("photo", photo_digest), lambda: read_photo(data))


def photo_note(photo_digest: str, data: bytes) -> str | None:
    """Which page or frame of a multi-page file is explained (None for a single picture)."""
    return PHOTOS.get(("note", photo_digest), lambda: frames_note(data))


def display_jpeg(photo_digest: str, array: np.ndarray, side: int = DISPLAY_SIDE) -> bytes:
    """The photo as JPEG bytes with its long side at most `side`, encoded once: st.image and the
    overlay component would otherwise re-encode the array on every rerun."""
    return PHOTOS.get(("jpeg", photo_digest, side), lambda: image_jpeg(array, max_side=side))


_PNGS = {}  # id(explanation) -> {(layer, side, shared): PNG}, dropped with the explanation


def map_png(explanation, layer: str, side: int = DISPLAY_SIDE, shared: bool = False) -> bytes | None:
    """The layer's map as the overlay component's 8-bit PNG, the size display_jpeg gives the photo at
    `side`, encoded once per explanation; None for an empty map (the photo is shown as it is).
    `shared`: on the colour scale of all the explanation's layers."""
    if not explanation.has_evidence(layer):
        return None
    pngs = _PNGS.get(id(explanation))
    if pngs is None:
        pngs = _PNGS[id(explanation)] = {}
        weakref.finalize(explanation, _PNGS.pop, id(explanation), None)
    if (layer, side, shared) not in pngs:
        if shared and "shared" not in pngs:
            pngs["shared"] = explanation.on_shared_scale()
        pngs[layer, side, shared] = encode_map((pngs["shared"] if shared else explanation.maps)[layer], side)
    return pngs[layer, side, shared]


def preview(photo_digest: str, array: np.ndarray, side: int) -> np.ndarray:
    """The photo with its long side at most `side`, made once: for views that show many small maps."""
    return PHOTOS.get(("preview", photo_digest, side), lambda: read_photo(array, max_side=side))


def thumbnail(path: Path) -> np.ndarray:
    """A sample's gallery picture, 96 px on the long side."""
    return PHOTOS.get(("thumbnail", str(path)), lambda: read_photo(path, max_side=96))


@st.cache_resource(show_spinner=False, max_entries=4)
def named_explainer(name: str) -> Explainer:
    """A zoo model (downloaded once) or a model shipped in assets/models."""
    return _ready(Explainer(load_model(name)))


def _ready(explainer: Explainer) -> Explainer:
    """Trace what the first map needs now, and in the background one pass over every layer, then
    the faithfulness probe, so that switching layers or tabs soon never waits for a trace."""
    explainer.warm()

    def prepare():
        explainer.prepare_all_layers()
        explainer.prepare_metrics()

    threading.Thread(target=prepare, name="trace-in-background", daemon=True).start()
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
    return _ready(explainer)


def predict(model_key: str, photo_digest: str, explainer: Explainer, array: np.ndarray, top: int = 5):
    return RESULTS.get(("predict", model_key, photo_digest, top), lambda: explainer.predict(array, top=top))


def explain(model_key, photo_digest, layers: tuple, class_index: int, method: str, counterfactual: bool,
            explainer: Explainer, array: np.ndarray, progress=None, keep_activations: bool = False, size=None,
            method_options: tuple = ()):
    """The explanation, computed once for everyone who asks; `progress` hears only a fresh computation."""
    key = ("explain", model_key, photo_digest, layers, class_index, method, counterfactual, keep_activations, size,
           method_options)
    return RESULTS.get(key, lambda: explainer.explain(array, list(layers), class_index, method, counterfactual,
                                                      progress=progress, keep_activations=keep_activations, size=size,
                                                      method_options=dict(method_options)))


def faithfulness(model_key, photo_digest, layer, class_index, methods: tuple, explainer, array, progress=None):
    """Deletion and insertion curves for each method's map and for the three baselines."""
    def work():
        scored, names = {}, [*methods, "centre", "random", "sobel"]
        maps = metrics.baselines(array)
        tell = progress or (lambda done: None)
        for done, name in enumerate(names):
            if name in maps:
                saliency = maps[name]
            else:  # Score-CAM's channels move the bar within its share
                saliency = explain(model_key, photo_digest, (layer,), class_index, name, False, explainer, array,
                                   progress=lambda part: tell((done + part) / len(names))).maps[layer]
            scored[name] = metrics.curves(explainer, array, saliency, class_index)
            tell((done + 1) / len(names))
        return scored

    return RESULTS.get(("faithfulness", model_key, photo_digest, layer, class_index, methods), work)


def sanity(model_key, photo_digest, layer, class_index, method, explainer, array, progress=None):
    """The cascading-randomisation check, on a SANITY_SIDE px copy of the photo (made once, shared with its strip)."""
    return RESULTS.get(("sanity", model_key, photo_digest, layer, class_index, method),
                       lambda: metrics.sanity(explainer, preview(photo_digest, array, SANITY_SIDE), layer, method,
                                              class_index, progress=progress))


def layer_quality(model_key, photo_digest, layers: tuple, class_index, method, explainer, array, mask=None,
                  progress=None):
    """A quality score per layer from one pass: insertion AUC, or with a ground-truth mask the
    pointing game and the energy inside it."""
    def work():
        e = explain(model_key, photo_digest, layers, class_index, method, False, explainer, array)
        scores = {}
        for done, layer in enumerate(layers):
            if mask is None:
                scores[layer] = {"insertion AUC": metrics.curves(explainer, array, e.maps[layer], class_index,
                                                                 deletion_too=False)["insertion_auc"]}
            else:
                scores[layer] = {"pointing game": float(metrics.pointing_hit(e.maps[layer], mask)),
                                 "energy inside": metrics.energy_inside(e.maps[layer], mask)}
            if progress:
                progress((done + 1) / len(layers))
        return scores

    return RESULTS.get(("quality", model_key, photo_digest, layers, class_index, method), work)


def ground_truth(heatmap: np.ndarray, mask: np.ndarray) -> tuple[bool, float]:
    """(does the map's peak hit the object, the share of its energy inside the object)."""
    return metrics.pointing_hit(heatmap, mask), metrics.energy_inside(heatmap, mask)


def deleted_inputs(model_key, photo_digest, layer, class_index, method, counterfactual, explainer, array, saliency,
                   fractions):
    """What the model sees with the map's top pixels blurred away, at each fraction."""
    return RESULTS.get(("deleted", model_key, photo_digest, layer, class_index, method, counterfactual, fractions),
                       lambda: metrics.deleted_inputs(explainer, array, saliency, fractions))


@st.cache_data(show_spinner=False, max_entries=64)  # small PNGs: the count bounds the size
def heatmap_with_colour_bar(key: tuple, _raw: np.ndarray, colormap: str) -> bytes:
    """The raw map at layer resolution with its scale, cached because matplotlib is slow."""
    return figure_png(colour_bar_figure(_raw, colormap), dpi=110)
