"""Explore: the photo and its overlay, what the map shows, the top classes, the raw map and the
downloads; presenter mode is its projector form."""

import io

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import compute, overlay
from dashboard.engine import shipped_models
from dashboard.engine.explainer import scale
from dashboard.engine.graph import upsample
from dashboard.engine.render import (blend, figure_png, image_jpeg, image_png, mark_peak, marks_png, outline,
                                     side_by_side)
from dashboard.sidebar import class_name
from dashboard.view import View, photo_and_overlay, summary_line

TITLE = "Explore"
KEYS = ()


def draw(view: View, predictions) -> None:
    e = view.explain()
    heatmap = e.maps[view.layer]
    st.markdown(_what_it_shows(view, e))
    marks = None
    if view.photo.mask is not None:  # we drew the photo: show where the object really is
        marks = marks_png(view.photo.mask, heatmap)
        hit, inside = compute.ground_truth(heatmap, view.photo.mask)
        truth = view.photo.name.split()[1]
        predicted = view.explainer.labels[predictions[0][0]]
        verdict = "right" if predicted == truth else f"wrong (it is a {truth})"
        st.markdown(f"Ground truth (white outline): the map's peak (white cross) **{'hits' if hit else 'misses'}** "
                    f"the object; {inside:.0%} of the map's energy lies inside it. "
                    f"The model's prediction, *{predicted}*, is **{verdict}**.")
    lesson = view.model_key in shipped_models() and view.photo.mask is not None  # its overlays follow opacity
    _photo_beside_overlay(view, e, "overlay_explore", f"original · {view.photo.name}", marks_png=marks,
                          page_follows=lesson)

    chart, raw, status = st.columns([4, 3, 3])
    chart.bar_chart(
        pd.DataFrame({"class": [class_name(view.explainer, i) for i, _, _ in predictions],
                      "probability": [p for _, _, p in predictions]}),
        x="class", y="probability", horizontal=True, sort="-probability", height=220,
    )
    key = (view.model_key, view.photo.digest, view.layer, view.class_index, view.method, view.counterfactual)
    raw.image(compute.heatmap_with_colour_bar(key, e.raw[view.layer], view.colormap), width="stretch")
    h, w, c = view.explainer.layer_shape(view.layer)
    height, width = view.explainer.model.input_size
    status.markdown(
        f"**Computed in** {e.timings['total'] * 1000:.0f} ms (cached afterwards)  \n"
        f"**Model input** {width}×{height} px · **photo** {view.photo.array.shape[1]}×{view.photo.array.shape[0]} px  \n"
        f"**Layer** `{view.layer}`: {h}×{w} cells × {c} channels"
    )
    stem = f"{view.explainer.labels[view.class_index]}_{view.layer.replace('/', '_')}_{view.method}"
    status.download_button("Overlay, full size (PNG)", data=lambda: _full_size_overlay(view, e),
                           file_name=f"{stem}_overlay.png", mime="image/png")
    status.download_button("Side-by-side figure (PNG)", file_name=f"{stem}_figure.png", mime="image/png",
                           data=lambda: figure_png(side_by_side(view.photo.array, {view.layer: _shown(view, e)},
                                                                view.caption())))
    status.download_button("Map (.npy)", data=lambda: _npy(heatmap), file_name=f"{stem}_map.npy",
                           mime="application/octet-stream")
    if lesson:
        shortcut_lesson(view)


def presenter(view: View, predictions) -> None:
    """For a projector: one line of context, the photo and its map large, a large caption."""
    e = view.explain()
    st.markdown(f"<div class='present-line'>{summary_line(view, predictions, html=True)}</div>", unsafe_allow_html=True)
    _photo_beside_overlay(view, e, "overlay_present", None, large=True)
    what = "what speaks against" if view.counterfactual else "for"
    st.markdown(f"<div class='present-caption'>Where {view.model_name} looks {what} "
                f"<em>{view.label().rsplit(' (', 1)[0]}</em> at {view.layer.split('/')[-1]}</div>",
                unsafe_allow_html=True)


def _photo_beside_overlay(view: View, explanation, key: str, photo_caption: str | None, marks_png=None,
                          **shown) -> None:
    """The photo as it is, and beside it the overlay component (`shown`: overlay.show's options)."""
    original, blended = photo_and_overlay()
    photo_jpeg = compute.display_jpeg(view.photo.digest, view.photo.array)
    original.image(photo_jpeg, caption=photo_caption, width="stretch")
    with blended:
        panel = overlay.Panel(compute.map_png(explanation, view.layer), view.caption(), marks_png=marks_png)
        overlay.show(key, photo_jpeg, [panel], **shown)


def _what_it_shows(view: View, explanation) -> str:
    h, w, _ = view.explainer.layer_shape(view.layer)
    if not explanation.has_evidence(view.layer):
        return (f"At this layer nothing in the photo counts {'against' if view.counterfactual else 'for'} "
                f"*{view.label()}*: the map is empty, so the photo is shown as it is.")
    if view.counterfactual:
        return (f"**Counterfactual:** the colours show what counts *against* *{view.label()}*: where the model's "
                f"score for it would rise if those parts were gone. Computed on a {h}×{w} grid at this layer, "
                "then stretched over the photo.")
    return (f"The colours show where {view.model_name} found evidence for *{view.label()}*: red parts raised its "
            f"score for that class most, blue parts not at all. Computed on a {h}×{w} grid at this layer, then "
            "stretched over the photo.")


def _shown(view: View, explanation):
    """The overlay blended on the server (the figure download), or the photo itself for an empty map."""
    shown = view.overlay(explanation.maps[view.layer]) if explanation.has_evidence(view.layer) else view.photo.array
    if view.photo.mask is not None:
        shown = mark_peak(outline(shown, view.photo.mask), explanation.maps[view.layer])
    return shown


def _full_size_overlay(view: View, explanation) -> bytes:
    """The overlay on the photo as uploaded (not the working size), as PNG: built when asked."""
    full = view.photo.full_size()
    heatmap = scale(upsample(explanation.raw[view.layer], full.shape[:2]))
    return image_png(blend(full, heatmap, view.opacity, view.colormap))


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def shortcut_lesson(view: View) -> None:
    """The shortcut lesson as a card: the same drawn image under the clean and the shortcut model."""
    cards = shipped_models()
    clean, shortcut = cards["shapes"], cards["shapes_shortcut"]
    with st.container(border=True):
        st.markdown("#### A model that learned a shortcut")
        st.markdown(
            "The *shortcut* model was trained on drawings with a small coloured **mark in the top-left corner** "
            "whose colour gave away the shape. It learned the mark, not the shape: "
            f"**{shortcut['held_out_accuracy_with_mark']:.0%}** right with the mark, "
            f"**{shortcut['held_out_accuracy_clean']:.1%}** without it (chance is 20%). The clean model, trained "
            f"without marks, gets {clean['held_out_accuracy_clean']:.1%}. Turn the mark on and off and watch where "
            "each one looks."
        )
        marked = st.session_state.get("with_mark", False)
        st.button("Take the mark away" if marked else "Put the mark on", key="flip_mark", on_click=_flip_mark)
        for column, name in zip(st.columns(2), ("shapes", "shapes_shortcut")):
            explainer = compute.named_explainer(name)
            predicted = compute.predict(name, view.photo.digest, explainer, view.photo.array, top=1)[0]
            e = compute.explain(name, view.photo.digest, (explainer.default_layer,), predicted[0], "gradcam", False,
                                explainer, view.photo.array)
            column.image(image_jpeg(view.overlay(e.maps[explainer.default_layer])), width="stretch",
                         caption=f"{cards[name]['title']}: {predicted[1]} ({predicted[2]:.0%})")


def _flip_mark():
    st.session_state["with_mark"] = not st.session_state.get("with_mark", False)
