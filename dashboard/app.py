"""Grad-CAM Explorer: streamlit run dashboard/app.py"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamlit runs this file as a script

import streamlit as st  # noqa: E402

from dashboard import compute, layout, photos, sidebar, tabs, url_state  # noqa: E402
from dashboard.engine import InputError  # noqa: E402
from dashboard.tabs import explore  # noqa: E402
from dashboard.view import View, summary_line  # noqa: E402

url_state.own(tabs.KEYS, tabs.KEPT)

url_state.keep_selections()
url_state.choose("present", [True, False], False, parse=url_state.flag)
presenting, light = st.session_state["present"], st.session_state.get("light", False)
# Applied on every run, so switching presenter mode on in the sidebar folds the sidebar away too.
st.set_page_config(page_title="Grad-CAM Explorer", page_icon="🔥", layout="wide",
                   initial_sidebar_state="collapsed" if presenting else "auto")
layout.style(presenting, light)
if url_state.moved_here():
    st.toast(url_state.MOVED, icon=":material/sync:")
summary, drop_zone, share = layout.header(presenting)

try:
    model_key, explainer = sidebar.model_picker()
except sidebar.NoModelYet:
    photos.photo_input(drop_zone)  # drawn even now: a widget left out of a run forgets its value (the dropped photo)
    st.info("Drop your model file in the sidebar: a .keras or .h5 file, or a Teachable Machine export (.zip), "
            "with its labels.txt if it has one. It is loaded in Keras safe mode: Lambda layers and custom code "
            "are refused.")
    st.stop()
photo = photos.photo_input(drop_zone)
predictions = compute.predict(model_key, photo.digest, explainer, photo.array)
st.sidebar.header("Explanation")
class_index = sidebar.class_picker(explainer, predictions, context=f"{model_key}:{photo.digest}")
layer = sidebar.layer_picker(explainer)
method, counterfactual, method_options = sidebar.method_picker(explainer)
display = sidebar.display_controls()
view = View(model_key=model_key, explainer=explainer, photo=photo, class_index=class_index, layer=layer,
            method=method, counterfactual=counterfactual, display=display, method_options=method_options)

url_state.choose("tab", tabs.TITLES, tabs.TITLES[0])
state = st.session_state
url_state.publish(
    model=model_key if not model_key.startswith("file:") else "own", photo=photo.link, layer=layer,
    method=method, counterfactual=counterfactual, opacity=display.opacity, colormap=display.colormap, tab=state["tab"],
    present=presenting or None, all_layers=state.get("all_layers") or None, **{"class": class_index},
    **dict(method_options),
    **{key: state.get(key) for key in tabs.KEYS},
)
if not presenting:  # presenter mode has its own, larger line
    summary.markdown(summary_line(view, predictions))
layout.share_button(share, photo.link)

try:
    if presenting:
        explore.presenter(view, predictions)
    else:
        for tab, module in zip(st.tabs(tabs.TITLES, key="tab", on_change="rerun"), tabs.TABS):
            if tab.open:
                with tab:
                    module.draw(view, predictions)
except InputError as error:
    st.error(str(error))
