"""Through the layers: a scrubber over the convolution layers, first to last. One pass computes
every map at GRID_SIDE px and the browser flips between them, so a step or Play is one frame."""

import streamlit as st

from dashboard import compute, overlay
from dashboard.url_state import choose
from dashboard.view import GRID_SIDE, View

TITLE = "Through the layers"
KEYS = ("scrub",)


def _depth(position: int, count: int) -> str:
    return ("early", "middle", "late")[min(2, 3 * position // max(count, 1))]


def draw(view: View, predictions) -> None:
    layers = view.explainer.conv_layers
    small = compute.preview(view.photo.digest, view.photo.array, GRID_SIDE)
    method = view.quick_method("every layer")
    e = view.explain(layers=layers, size=small.shape[:2], method=method)
    choose("scrub", layers, layers[-1])
    photo = compute.display_jpeg(view.photo.digest, view.photo.array, GRID_SIDE)  # the grids' copy
    panels = []
    for position, layer in enumerate(layers):
        h, w, c = view.explainer.layer_shape(layer)
        title = (f"{position + 1} of {len(layers)}: {_depth(position, len(layers))} · {layer} · "
                 f"{h}×{w} cells × {c} channels")
        panels.append(overlay.Panel(compute.map_png(e, layer, GRID_SIDE), view.caption(layer=layer, method=method),
                                    title=title))
    left, right = st.columns(2)
    left.image(photo, width="stretch", caption="original")
    with right:
        overlay.show("overlay_layers", photo, panels, steps=layers, step_key="scrub")
    st.caption("Early layers respond to edges and colours all over the photo; late layers to the parts that "
               "decide the class. Play steps through them; the slider or the arrow keys move one layer.")
