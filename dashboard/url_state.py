"""The view in the URL: model, layer, class, method and opacity, so a shared link opens the same view."""

import streamlit as st

KEYS = ("model", "layer", "class", "method", "opacity", "colormap")


def from_link(key: str):
    """The value the page was opened with (read once per session), or None."""
    if "_opened_with" not in st.session_state:
        st.session_state["_opened_with"] = {k: st.query_params[k] for k in KEYS if k in st.query_params}
    return st.session_state["_opened_with"].get(key)


def choose(key: str, options, default, parse=str):
    """Seed a widget's session value from the link, or the default, when it is unset or no longer
    valid. `options` is a list of valid values or a test of validity."""
    valid = options if callable(options) else options.__contains__
    if key in st.session_state and valid(st.session_state[key]):
        return
    try:
        linked = parse(from_link(key)) if from_link(key) is not None else None
    except ValueError:
        linked = None
    st.session_state[key] = linked if linked is not None and valid(linked) else default


def publish(**values) -> None:
    st.query_params.update({key: str(value) for key, value in values.items()})
