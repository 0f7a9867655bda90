"""Compare classes: where the model looks for each of several classes, at the chosen layer."""

import streamlit as st

from dashboard.sidebar import class_name
from dashboard.url_state import choose, parse_list
from dashboard.view import View, overlay_grid

TITLE = "Compare classes"
KEYS = ("compare_classes",)


def draw(view: View, predictions) -> None:
    labels = view.explainer.labels
    top = [index for index, _, _ in predictions]
    context = (view.model_key, view.photo.digest)
    if st.session_state.get("_compare_classes_context") not in (None, context):
        st.session_state["compare_classes"] = top[:3]  # another photo or model: its own top 3
    st.session_state["_compare_classes_context"] = context
    choose("compare_classes", lambda v: isinstance(v, list) and all(0 <= i < len(labels) for i in v), top[:3],
           parse=parse_list(int))
    options = top + [i for i in range(len(labels)) if i not in top]
    chosen = st.multiselect(f"Classes at {view.layer}", options, key="compare_classes", max_selections=8,
                            format_func=lambda i: class_name(view.explainer, i))
    if chosen:
        overlay_grid(view, "overlay_compare_classes",
                     [(view.explain(class_index=index), view.layer, view.label(index)) for index in chosen])
