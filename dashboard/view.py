"""What the sidebar chose (View), and the pieces every tab draws with: the overlay component fed
from cached explanations, grids, in-order charts, progress bars."""

from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import compute, overlay
from dashboard.engine import SLOW, TITLES, Explainer
from dashboard.engine.render import blend, image_jpeg
from dashboard.photos import Photo
from dashboard.sidebar import class_name, model_name

GRID_SIDE = 480  # pixels: the long side of the photo and maps in a grid of overlays (and the scrubber)


@dataclass
class View:
    """Everything the sidebar chose, and the cached way to explain it."""

    model_key: str
    explainer: Explainer
    photo: Photo
    class_index: int
    layer: str
    method: str
    counterfactual: bool
    display: overlay.Display  # opacity and colormap, as last reported by the overlay
    method_options: tuple = ()  # the chosen method's options, (name, value) pairs (attention rollout's)

    @property
    def opacity(self) -> float:
        return self.display.opacity

    @property
    def colormap(self) -> str:
        return self.display.colormap

    def explain(self, layers=None, class_index=None, method=None, keep_activations=False, size=None):
        """The cached explanation; a fresh slow one (Score-CAM) shows its progress (a cached one shows nothing)."""
        slot = st.empty()

        def progress(done):
            slot.progress(done, text=f"Score-CAM runs the model once per channel: {done:.0%} of the channels")

        method = method or self.method
        explanation = compute.explain(
            self.model_key, self.photo.digest, tuple(layers or [self.layer]),
            self.class_index if class_index is None else class_index, method, self.counterfactual,
            self.explainer, self.photo.array, progress=progress, keep_activations=keep_activations, size=size,
            method_options=self.method_options if method == self.method else (),
        )
        slot.empty()
        return explanation

    def overlay(self, heatmap, photo=None):
        """Blended on the server: for downloads and the small static strips."""
        return blend(self.photo.array if photo is None else photo, heatmap, self.opacity, self.colormap)

    def label(self, class_index=None):
        return class_name(self.explainer, self.class_index if class_index is None else class_index)

    @property
    def model_name(self) -> str:
        return model_name(self.model_key, self.explainer)

    def caption(self, layer=None, method=None) -> str:
        what = "against" if self.counterfactual else "for"
        return f"{TITLES[method or self.method]} {what} {self.label()} at {(layer or self.layer).split('/')[-1]}"

    def quick_method(self, over: str) -> str:
        """The chosen method, or Grad-CAM in place of a slow one (said on the page): Score-CAM runs the
        model once per channel, which over many layers or networks would take minutes."""
        if self.method not in SLOW:
            return self.method
        st.caption(f"{TITLES[self.method]} runs the model once per channel, which for {over} would take minutes: "
                   "this uses Grad-CAM.")
        return "gradcam"


def summary_line(view: View, predictions, html=False) -> str:
    index, _, probability = predictions[0]
    bold = (lambda text: f"<b>{text}</b>") if html else (lambda text: f"**{text}**")
    return f"{bold(view.model_name)} · top-1: {bold(class_name(view.explainer, index).rsplit(' (', 1)[0])} {probability:.0%}"


def overlay_grid(view: View, key: str, maps: list, columns: int = 4, shared: bool = False) -> None:
    """Overlays of the photo, one per (explanation, layer, caption), with one shared opacity and
    colormap control, blended in the browser at GRID_SIDE px. `shared`: one colour scale for all
    layers of each explanation."""
    photo = compute.display_jpeg(view.photo.digest, view.photo.array, GRID_SIDE)
    panels = [overlay.Panel(compute.map_png(e, layer, GRID_SIDE, shared), caption) for e, layer, caption in maps]
    overlay.show(key, photo, panels, columns=min(columns, len(panels)) or 1)


def grid(items, columns=4):
    """Static images: (image, caption) pairs, laid out in rows."""
    for start in range(0, len(items), columns):
        for column, (image, caption) in zip(st.columns(columns), items[start:start + columns]):
            column.image(image_jpeg(image), caption=caption, width="stretch")


def in_order_chart(frame: pd.DataFrame, x_label: str, domain: tuple, height: int = 260) -> None:
    """Lines over named steps kept in the frame's order (st.line_chart sorts names alphabetically),
    on a fixed value range so a flat line reads as flat."""
    steps = list(frame.index)
    long = frame.rename_axis("step").reset_index().melt("step", var_name="series", value_name="value")
    several = len(frame.columns) > 1
    chart = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("step:N", sort=steps, title=x_label, axis=alt.Axis(labelAngle=-60, labelLimit=110)),
        y=alt.Y("value:Q", title=None if several else frame.columns[0], scale=alt.Scale(domain=list(domain))),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom") if several else None),
        tooltip=["step", "series", alt.Tooltip("value:Q", format=".2f")],
    )
    st.altair_chart(chart, height=height, width="stretch")


def progress_bar(text):
    """(slot, progress callback): the bar disappears when the slot is emptied."""
    slot = st.empty()
    return slot, (lambda done: slot.progress(done, text=f"{text}: {done:.0%}"))


def photo_and_overlay():
    """Two columns, photo and overlay; on a phone they stack with the overlay first (layout.COMPACT)."""
    return st.container(key="photo_and_overlay").columns(2)
