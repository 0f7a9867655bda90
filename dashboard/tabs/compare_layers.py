"""Compare layers: chosen layers side by side from one pass, and which layer's map is best."""

import pandas as pd
import streamlit as st

from dashboard import compute
from dashboard.sidebar import layer_title
from dashboard.url_state import choose, parse_list
from dashboard.view import View, in_order_chart, overlay_grid, progress_bar

TITLE = "Compare layers"
KEYS = ("compare_layers",)
KEPT = ("shared_scale",)


def draw(view: View, predictions) -> None:
    layers = view.explainer.layers
    choose("compare_layers", lambda v: isinstance(v, list) and set(v) <= set(layers), view.explainer.stage_ends(4),
           parse=parse_list(str))
    chosen = st.multiselect("Layers (2-8), computed in one pass", layers, key="compare_layers", max_selections=8,
                            format_func=lambda n: layer_title(view.explainer, n))
    shared = st.toggle("Shared colour scale", key="shared_scale",
                       help="Off: each map is scaled to its own 0..1. On: one scale for all, from the largest value.")
    if len(chosen) < 2:
        st.info("Pick at least two layers.")
        return
    e = view.explain(layers=chosen)
    ordered = [name for name in layers if name in chosen]
    overlay_grid(view, "overlay_compare_layers", [(e, name, layer_title(view.explainer, name)) for name in ordered],
                 shared=shared)
    which_layer(view)


def which_layer(view: View) -> None:
    st.subheader("Which layer?")
    mask = view.photo.mask
    what = "the pointing game and the energy inside the object" if mask is not None else "insertion AUC"
    if not st.toggle(f"Score every convolution layer ({what})", key="score_layers"):
        return
    convs = tuple(view.explainer.conv_layers)
    slot, progress = progress_bar("Scoring the layers")
    scores = compute.layer_quality(view.model_key, view.photo.digest, convs, view.class_index,
                                   view.quick_method("every layer"), view.explainer, view.photo.array, mask, progress)
    slot.empty()
    frame = pd.DataFrame(scores).T
    frame.index = [name.split("/")[-1] for name in frame.index]
    in_order_chart(frame, "layer, first to last", (0, 1))
    score = frame.columns[-1]  # insertion AUC, or the energy inside the object on drawn shapes
    shown = view.layer.split("/")[-1]
    here = f"; at {shown}, the layer shown: {frame[score][shown]:.2f}" if shown in frame.index else ""
    st.caption(f"Highest {score}: **{frame[score].idxmax()}** ({frame[score].max():.2f}){here}.")
