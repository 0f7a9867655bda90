"""The sidebar: model, class, layer, method, display. Widgets only; the engine is reached through compute."""

import streamlit as st

from dashboard import compute, overlay, photos
from dashboard.engine import ATTENTION, PREPROCESS_MODES, TITLES, ZOO, DEFAULT_MODEL, Explainer, InputError, shipped_models
from dashboard.engine.errors import plural
from dashboard.engine.head import output_names
from dashboard.engine.render import COLORMAPS
from dashboard.url_state import choose, flag

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


class NoModelYet(Exception):
    """"Your own model" is chosen but no file was dropped yet."""


def model_title(key: str) -> str:
    """The picker's name for a model: cached zoo models are ready, the others need a download."""
    if key == OWN_MODEL:
        return "Your own model (.keras, .h5, Teachable Machine .zip)"
    if key in ZOO:
        entry = ZOO[key]
        return f"{entry.title} · {'ready' if entry.cached else f'{entry.download_mb:g} MB download'}"
    return f"{shipped_models()[key]['title']} · offline"


def short_title(key: str) -> str:
    """The picker's name without its status: "MobileNetV2"."""
    return model_title(key).split(" · ")[0]


def model_name(key: str, explainer: Explainer) -> str:
    """The model's name in sentences: "MobileNetV2", or a dropped file's name."""
    return explainer.model.name if key.startswith("file:") else short_title(key)


def _follow_model() -> None:
    """Shapes models see drawn shapes; ImageNet models see photos."""
    shipped = st.session_state["model"] in shipped_models()
    source = st.session_state.get("photo_source", "")
    if shipped and (not source or source.startswith("sample:")):
        photos.use(photos.DRAWN)
    elif not shipped and source == photos.DRAWN:
        photos.use(f"sample:{photos.DEFAULT_SAMPLE}")


def model_picker() -> tuple[str, Explainer]:
    """(model key, explainer). A model that fails to load leaves the previous one in place; when the
    very first one fails (no network, no cache), the app starts on the shipped shapes model."""
    st.sidebar.header("Model")
    options = [*ZOO, *shipped_models(), OWN_MODEL]
    if "_return_to" in st.session_state:  # set below, applied before the widget exists
        st.session_state["model"] = st.session_state.pop("_return_to")
        _follow_model()
    choose("model", options, DEFAULT_MODEL)
    choice = st.sidebar.selectbox("Model", options, format_func=model_title, key="model",
                                  label_visibility="collapsed", on_change=_follow_model)
    if "_notice" in st.session_state:
        st.warning(st.session_state.pop("_notice"))
    try:
        if choice == OWN_MODEL:
            loaded = _own_model()
        else:
            where = "downloading its ImageNet weights" if choice in ZOO and not ZOO[choice].cached else "from this server"
            with st.spinner(f"Loading {short_title(choice)} ({where})..."):
                loaded = (choice, compute.named_explainer(choice))
    except InputError as error:
        previous = st.session_state.get("_last_good_model")
        if previous is None and choice != FALLBACK_MODEL and FALLBACK_MODEL in shipped_models():
            st.session_state["_notice"] = f"{error} Started on the offline Shapes model instead."
            st.session_state["_return_to"] = FALLBACK_MODEL
            st.rerun()
        if previous is None:
            st.error(str(error))
            st.stop()
        if choice != OWN_MODEL:  # the picker goes back to the model still shown
            st.session_state["_notice"] = f"{error} Still showing {model_name(*previous)}."
            st.session_state["_return_to"] = previous[0]
            st.rerun()
        st.error(f"{error} Still showing {model_name(*previous)}.")
        return previous
    st.session_state["_last_good_model"] = loaded
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
    models = [upload for upload in uploads or [] if not upload.name.lower().endswith(".txt")]
    texts = [upload for upload in uploads or [] if upload.name.lower().endswith(".txt")]
    if not models:
        raise NoModelYet()
    # Dropping a second model adds it to the list: the newest file is the one meant.
    model, labels = models[-1], texts[-1].getvalue() if texts else None
    if len(models) > 1 or len(texts) > 1:
        st.sidebar.caption(f"Using the files dropped last: {model.name}{' and ' + texts[-1].name if texts else ''}.")
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


def class_name(explainer: Explainer, index: int) -> str:
    """A label as people write it: "Egyptian cat (285)"."""
    return f"{explainer.labels[index].replace('_', ' ')} ({index})"


def class_picker(explainer: Explainer, predictions: list, context: str) -> int:
    """Top-5 first, then every class; a search box finds "hot dog" as well as "hotdog". Resets to
    the top-1 when photo or model change."""
    top = [index for index, _, _ in predictions]
    if st.session_state.get("_class_context") not in (None, context):
        st.session_state["class"] = top[0]
    st.session_state["_class_context"] = context
    everything = top + [i for i in range(len(explainer.labels)) if i not in top]
    choose("class", everything, top[0], parse=int)
    query = st.sidebar.text_input("Find a class", key="class_search", placeholder="e.g. hot dog",
                                  help="Spaces, case and underscores do not matter.")
    options = everything
    if query.strip():
        found = set(explainer.find_classes(query))
        options = [i for i in everything if i in found] or everything
        if not found:
            st.sidebar.caption(f"No class matches '{query}'.")
        elif st.session_state["class"] not in found:
            st.session_state["class"] = options[0]
    return st.sidebar.selectbox("Class to explain", options, key="class",
                                format_func=lambda i: class_name(explainer, i),
                                help="The top-5 predictions come first.")


def layer_title(explainer: Explainer, name: str) -> str:
    """"block_16_project · 7×7"; a transformer's layers say where they sit: "ln_1 · block 7 of 12 · 14×14 tokens"."""
    if explainer.transformer:
        return f"{name.split('/')[-1]} · {explainer.describe(name)}"
    return "{} · {}×{}".format(name.split("/")[-1], *explainer.layer_shape(name)[:2])


def layer_picker(explainer: Explainer) -> str:
    """The model's convolution layers with their resolution (MobileNetV2: 53 of 153 spatial layers);
    a switch shows every spatial layer."""
    choose("all_layers", [True, False], False, parse=flag)
    choose("layer", explainer.layers, explainer.default_layer)
    everything = st.session_state["all_layers"]
    options = explainer.layers if everything else explainer.conv_layers
    if st.session_state["layer"] not in options:  # a linked or chosen layer that is not a convolution
        options = explainer.layers
    layer = st.sidebar.selectbox("Layer", options, key="layer", format_func=lambda n: layer_title(explainer, n),
                                 help="In graph order; the default is the last spatial layer.")
    st.sidebar.toggle("Every spatial layer", key="all_layers",
                      help="Also activations, batch norms, additions and padding, not only the convolutions.")
    return layer


def method_picker(explainer: Explainer) -> tuple[str, bool, tuple]:
    """The method, counterfactual, and the method's options as sorted (name, value) pairs."""
    methods = explainer.methods  # attention rollout only for transformers that attend over all tokens
    choose("method", methods, "gradcam")
    method = st.sidebar.selectbox("Method", methods, key="method", format_func=TITLES.get)
    options = ()
    if method in ATTENTION:
        choose("fusion", ["mean", "max"], "mean")
        choose("discard", lambda v: isinstance(v, float) and 0 <= v < 1, 0.9, parse=float)
        fusion = st.sidebar.radio("Head fusion", ["mean", "max"], key="fusion", horizontal=True,
                                              help="How the attention heads of a block are combined.")
        discard = st.sidebar.slider("Discard ratio", 0.0, 0.99, key="discard", step=0.01,
                                    help="The share of each block's weakest attention links dropped before the "
                                         "rollout: higher keeps only the strongest paths (sharper, noisier maps).")
        options = (("discard", discard), ("fusion", fusion))
    choose("counterfactual", [True, False], False, parse=flag)
    counterfactual = st.sidebar.toggle("Counterfactual", key="counterfactual",
                                       help="Show what speaks against the class: ReLU of minus the weighted sum.")
    return method, counterfactual, options


def display_controls() -> overlay.Display:
    """Opacity and colormap are set on the overlay itself (the overlay component, in the browser);
    their values are seeded here from the link."""
    st.sidebar.header("Display")
    choose("opacity", lambda v: isinstance(v, float) and 0 <= v <= 1, 0.5, parse=float)
    choose("colormap", list(COLORMAPS), "jet")
    st.sidebar.toggle("Presenter mode", key="present", help="For a projector: the photo and the map, large.")
    st.sidebar.toggle("Light background", key="light", help="Easier to read on some projectors.")
    return overlay.display()
