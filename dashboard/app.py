"""Grad-CAM Explorer: streamlit run dashboard/app.py"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # streamlit runs this file as a script

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from dashboard import sidebar, views  # noqa: E402
from dashboard import compute  # noqa: E402
from dashboard.engine import InputError  # noqa: E402
from dashboard.url_state import publish  # noqa: E402

st.set_page_config(page_title="Grad-CAM Explorer", page_icon="🔥", layout="wide")
st.title("Grad-CAM Explorer")
st.caption("Where does the classifier look when it picks a class?")

model_key, explainer = sidebar.model_picker()
photo = sidebar.photo_input()
predictions = compute.predict(model_key, photo.digest, explainer, photo.array)
st.sidebar.header("Explanation")
class_index = sidebar.class_picker(explainer, predictions, context=f"{model_key}:{photo.digest}")
layer = sidebar.layer_picker(explainer)
method, counterfactual = sidebar.method_picker()
opacity, colormap = sidebar.display_controls()
publish(model=model_key if not model_key.startswith("file:") else "own", layer=layer, **{"class": class_index},
        method=method, opacity=opacity, colormap=colormap)

chart, about = st.columns([3, 2])
chart.bar_chart(
    pd.DataFrame({"class": [f"{label} ({i})" for i, label, _ in predictions],
                  "probability": [p for _, _, p in predictions]}),
    x="class", y="probability", horizontal=True, sort=False, height=200,
)
about.markdown(f"**Model:** {explainer.model.name} · **top-1:** {predictions[0][1]} ({predictions[0][2]:.1%})")

view = views.View(model_key=model_key, explainer=explainer, photo=photo, class_index=class_index, layer=layer,
                  method=method, counterfactual=counterfactual, opacity=opacity, colormap=colormap)
tabs = st.tabs(["Explore", "Compare layers", "Compare classes", "Compare methods", "How it works"],
               key="tab", on_change="rerun")
try:
    for tab, draw in zip(tabs, [views.explore, views.compare_layers, lambda v: views.compare_classes(v, predictions),
                                views.compare_methods, views.how_it_works]):
        if tab.open:
            with tab:
                draw(view)
except InputError as error:
    st.error(str(error))
