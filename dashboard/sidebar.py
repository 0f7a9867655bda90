"""The sidebar: photo, model, class, layer, method, display. Widgets only; the engine is reached through compute."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import compute
from dashboard.demo import shapes
from dashboard.engine import (METHODS, PREPROCESS_MODES, TITLES, ZOO, DEFAULT_MODEL, Explainer, InputError, read_photo,
                              shipped_models)
from dashboard.engine.errors import plural
from dashboard.engine.head import output_names
from dashboard.engine.render import COLORMAPS
from dashboard.url_state import choose

SAMPLES = {path.stem.replace("_", " "): path for path in sorted((Path(__file__).parents[1] / "assets" / "samples").glob("*.jpg"))}
DEFAULT_SAMPLE = "cat chelsea"
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
OWN_MODEL = "own"
MODEL_TYPES = ["keras", "h5", "hdf5", "zip", "txt"]
AUTO = "auto"
PREPROCESS_TITLES = {
    AUTO: "auto (-1..1 for Teachable Machine, else raw pixels)",
    "tf": "tf: -1..1",
    "caffe": "caffe: BGR minus the ImageNet mean",
    "torch": "torch: 0..1, then ImageNet mean and std",
    "unit": "unit: 0..1 (x / 255)",
    "none": "none: raw 0..255 pixels",
}
FALLBACK_MODEL = "shapes"  # ships in assets/models: works with no network and no Keras cache
SOURCES = ["Sample", "Drawn shape", "Upload", "Camera"]


@dataclass
class Photo:
    name: str
    digest: str
    array: np.ndarray  # at working size (long side <= 1280 px)
    mask: np.ndarray | None = None  # the object's pixels, when we drew the photo ourselves
    data: bytes | None = None  # the file as given, for a full-size download

    def full_size(self) -> np.ndarray:
        return self.array if self.data is None else read_photo(self.data, max_side=None)


def _drawn_shape() -> Photo:
    """A fresh procedural sample (the shapes models' world), with its ground-truth mask."""
    st.session_state.setdefault("shape_seed", 0)
    left, right = st.sidebar.columns(2)
    if left.button("Draw a new sample", key="draw"):
        st.session_state["shape_seed"] += 1
    with_mark = right.checkbox("Corner mark", key="with_mark",
                               help="The mark whose colour the shortcut model learned instead of the shape.")
    seed = st.session_state["shape_seed"]
    sample = shapes.draw(np.random.default_rng([seed, 2026]), mark=with_mark)
    name = f"drawn {shapes.CLASSES[sample.label]} #{seed}"
    return Photo(name, compute.digest(sample.image.tobytes() + name.encode()), sample.image, sample.mask)


def photo_input() -> Photo:
    st.sidebar.header("Photo")
    source = st.sidebar.radio("Source", SOURCES, horizontal=True, key="source", label_visibility="collapsed")
    if source == "Drawn shape":
        return _drawn_shape()
    upload = None
    if source == "Upload":
        upload = st.sidebar.file_uploader("Drop a photo", type=IMAGE_TYPES, key="upload")
    elif source == "Camera":
        upload = st.sidebar.camera_input("Take a snapshot", key="camera")
    if upload is not None:
        data = upload.getvalue()
        photo_digest = compute.digest(data)
        try:
            return Photo(upload.name, photo_digest, compute.photo(photo_digest, data), data=data)
        except InputError as error:
            st.error(f"{upload.name}: {error} Showing a sample photo instead.")
    if source == "Sample":
        name = st.sidebar.selectbox("Sample photo", list(SAMPLES), key="sample",
                                    index=list(SAMPLES).index(DEFAULT_SAMPLE))
    else:
        name = DEFAULT_SAMPLE
    data = SAMPLES[name].read_bytes()
    photo_digest = compute.digest(data)
    return Photo(name, photo_digest, compute.photo(photo_digest, data), data=data)


def _model_title(key: str) -> str:
    if key == OWN_MODEL:
        return "Your own model (.keras, .h5, Teachable Machine .zip)"
    if key in ZOO:
        return f"{ZOO[key].title} · {ZOO[key].download_mb:g} MB"
    return f"{shipped_models()[key]['title']} · offline"


def _follow_model() -> None:
    """Shapes models see drawn shapes; ImageNet models see photos."""
    shipped = st.session_state["model"] in shipped_models()
    if shipped and st.session_state.get("source") in (None, "Sample"):
        st.session_state["source"] = "Drawn shape"
    elif not shipped and st.session_state.get("source") == "Drawn shape":
        st.session_state["source"] = "Sample"


def model_picker() -> tuple[str, Explainer]:
    """(model key, explainer). A model that fails to load leaves the previous one in place; when the
    very first one fails (no network, no cache), the app starts on the shipped shapes model."""
    st.sidebar.header("Model")
    options = [*ZOO, *shipped_models(), OWN_MODEL]
    if st.session_state.pop("_fall_back", False):  # set below, applied before the widget exists
        st.session_state["model"] = FALLBACK_MODEL
        _follow_model()
    choose("model", options, DEFAULT_MODEL)
    choice = st.sidebar.selectbox("Model", options, format_func=_model_title, key="model",
                                  label_visibility="collapsed", on_change=_follow_model)
    try:
        if choice == OWN_MODEL:
            loaded = _own_model()
        else:
            size = f"the first time, {ZOO[choice].download_mb:g} MB of ImageNet weights are downloaded" if choice in ZOO else "offline"
            with st.spinner(f"Loading {_model_title(choice).split(' · ')[0]} ({size})..."):
                loaded = (choice, compute.named_explainer(choice))
    except InputError as error:
        loaded = None
        previous = st.session_state.get("_last_good_model")
        if previous is None and choice != FALLBACK_MODEL and FALLBACK_MODEL in shipped_models():
            st.session_state["_notice"] = f"{error} Started on the offline Shapes model instead."
            st.session_state["_fall_back"] = True
            st.rerun()
        st.error(str(error))
    if loaded is None:
        previous = st.session_state.get("_last_good_model")
        if previous is None:
            st.stop()
        st.sidebar.caption(f"Still showing {previous[1].model.name}.")
        return previous
    st.session_state["_last_good_model"] = loaded
    if choice == FALLBACK_MODEL and "_notice" in st.session_state:
        st.warning(st.session_state["_notice"])
    return loaded


def _own_model():
    uploads = st.sidebar.file_uploader(
        "Model file, and its labels.txt", type=MODEL_TYPES, accept_multiple_files=True, key="model_file",
        help="A .keras or .h5 file, or Teachable Machine's converted_keras.zip as downloaded.",
    )
    preprocess = st.sidebar.selectbox(
        "Preprocessing", [AUTO, *PREPROCESS_MODES], key="preprocess", format_func=PREPROCESS_TITLES.get,
        help="How the model expects its pixels: the range it was trained on.",
    )
    if not uploads:
        st.sidebar.info("Drop a .keras or .h5 file, or a Teachable Machine export (.zip). It is loaded in Keras "
                        "safe mode: Lambda layers and custom code are refused.")
        return None
    models = [upload for upload in uploads if not upload.name.lower().endswith(".txt")]
    texts = [upload for upload in uploads if upload.name.lower().endswith(".txt")]
    if len(models) != 1 or len(texts) > 1:
        raise InputError("Drop one model file (.keras, .h5 or a Teachable Machine .zip) and at most one labels.txt.")
    model, labels = models[0], texts[0].getvalue() if texts else None
    model_digest, labels_digest = compute.digest(model.getvalue()), labels and compute.digest(labels)
    mode = None if preprocess == AUTO else preprocess
    output = st.session_state.get("model_output")
    with st.spinner(f"Loading {model.name}..."):
        try:
            explainer = compute.file_explainer(model_digest, model.getvalue(), model.name, labels_digest, labels, mode, output)
        except InputError:
            if output is None:
                raise
            output = None  # an output of the previous model: start from this one's default
            explainer = compute.file_explainer(model_digest, model.getvalue(), model.name, labels_digest, labels, mode, None)
    outputs = output_names(explainer.model.network)
    if len(outputs) > 1:
        st.session_state["model_output"] = explainer.model.head.layer.name if output is None else output
        st.sidebar.selectbox("Output to explain", outputs, key="model_output",
                             help="This model has several outputs; each is explained on its own.")
    else:
        st.session_state.pop("model_output", None)
    head = explainer.model.head
    st.sidebar.caption(f"{explainer.model.name}: {plural(head.classes, 'class')} ({head.kind}), "
                       f"{len(explainer.layers)} spatial layers.")
    return f"file:{model_digest}:{labels_digest}:{preprocess}:{output}", explainer


def class_picker(explainer: Explainer, predictions: list, context: str) -> int:
    """Top-5 first, then every class (type to search). Resets to the top-1 when photo or model change."""
    labels = explainer.labels
    top = [index for index, _, _ in predictions]
    options = top + [i for i in range(len(labels)) if i not in top]
    if st.session_state.get("_class_context") not in (None, context):
        st.session_state["class"] = top[0]
    st.session_state["_class_context"] = context
    choose("class", options, top[0], parse=int)
    return st.sidebar.selectbox("Class to explain", options, key="class",
                                format_func=lambda i: f"{labels[i]} ({i})",
                                help="The top-5 predictions come first; type to search all classes.")


def layer_picker(explainer: Explainer) -> str:
    """Layers are long lists (MobileNetV2 has 153): pick a resolution first, then a layer of it."""
    layers = explainer.layers
    resolution_of = {name: "{}×{}".format(*explainer.layer_shape(name)[:2]) for name in layers}
    groups = {}
    for name in layers:
        groups.setdefault(resolution_of[name], []).append(name)
    choose("layer", layers, explainer.default_layer)
    st.session_state["resolution"] = resolution_of[st.session_state["layer"]]  # the layer leads

    def jump_to_group():
        st.session_state["layer"] = groups[st.session_state["resolution"]][-1]

    resolution = st.sidebar.selectbox("Layer resolution", list(groups), key="resolution", on_change=jump_to_group,
                                      format_func=lambda r: f"{r} ({len(groups[r])} layers)")
    return st.sidebar.selectbox("Layer", groups[resolution], key="layer", format_func=lambda n: n.split("/")[-1],
                           help="Spatial layers in graph order, grouped by resolution; the default is the last one.")


def method_picker() -> tuple[str, bool]:
    methods = list(METHODS)
    choose("method", methods, "gradcam")
    method = st.sidebar.selectbox("Method", methods, key="method", format_func=TITLES.get)
    counterfactual = st.sidebar.toggle("Counterfactual", key="counterfactual",
                                       help="Show what speaks against the class: ReLU of minus the weighted sum.")
    return method, counterfactual


def display_controls() -> tuple[float, str]:
    st.sidebar.header("Display")
    choose("opacity", lambda v: isinstance(v, float) and 0 <= v <= 1, 0.5, parse=float)
    opacity = st.sidebar.slider("Opacity", 0.0, 1.0, step=0.05, key="opacity")
    choose("colormap", list(COLORMAPS), "jet")
    colormap = st.sidebar.selectbox("Colormap", COLORMAPS, key="colormap")
    return opacity, colormap
