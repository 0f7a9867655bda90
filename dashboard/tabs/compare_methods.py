"""Compare methods: the chosen class and layer under each CAM method."""

import streamlit as st

from dashboard.engine import TITLES
from dashboard.url_state import choose, parse_list
from dashboard.view import View, overlay_grid

TITLE = "Compare methods"
KEYS = ("compare_methods",)


def draw(view: View, predictions) -> None:
    methods = view.explainer.methods
    choose("compare_methods", lambda v: isinstance(v, list) and set(v) <= set(methods),
           ["gradcam", "gradcam++", "layercam", "eigencam"], parse=parse_list(str))
    chosen = st.multiselect(f"Methods for {view.label()} at {view.layer}", methods, key="compare_methods",
                            format_func=TITLES.get)
    if chosen:
        overlay_grid(view, "overlay_compare_methods",
                     [(view.explain(method=method), view.layer, TITLES[method]) for method in chosen])
