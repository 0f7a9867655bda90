"""The views: Explore (or its presenter form), Through the layers, Compare layers, classes and
methods, How it works. Each draws from cached explanations; drawing itself lives in engine.render."""

import io
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import compute
from dashboard.engine import METHODS, TITLES, Explainer, metrics, shipped_models
from dashboard.engine.explainer import scale
from dashboard.engine.graph import upsample
from dashboard.engine.render import (blend, colorize, diverging, enlarge, figure_png, image_jpeg, image_png,
                                     legend_strip, mark_peak, outline, side_by_side)
from dashboard.photos import Photo
from dashboard.sidebar import class_name, layer_title, model_name
from dashboard.url_state import choose, parse_list

SCRUB_SIDE = 480  # pixels: the long side of the layer scrubber's maps (one pass, every conv layer)
# Faithfulness curves: the chosen method in the accent colour, the three baselines far from it and each other.
CURVE_COLOURS = ["#ff7f0e", "#1f77b4", "#9e9e9e", "#2ca02c"]


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
    opacity: float
    colormap: str

    def explain(self, layers=None, class_index=None, method=None, keep_activations=False, size=None):
        """The cached explanation; a fresh Score-CAM shows its progress (a cached one shows nothing)."""
        slot = st.empty()

        def progress(done):
            slot.progress(done, text=f"Score-CAM runs the model once per channel: {done:.0%} of the channels")

        explanation = compute.explain(
            self.model_key, self.photo.digest, tuple(layers or [self.layer]),
            self.class_index if class_index is None else class_index, method or self.method, self.counterfactual,
            self.explainer, self.photo.array, progress=progress, keep_activations=keep_activations, size=size,
        )
        slot.empty()
        return explanation

    def overlay(self, heatmap, photo=None):
        return blend(self.photo.array if photo is None else photo, heatmap, self.opacity, self.colormap)

    def label(self, class_index=None):
        return class_name(self.explainer, self.class_index if class_index is None else class_index)

    @property
    def model_name(self) -> str:
        return model_name(self.model_key, self.explainer)

    def caption(self, layer=None, method=None) -> str:
        what = "against" if self.counterfactual else "for"
        return f"{TITLES[method or self.method]} {what} {self.label()} at {(layer or self.layer).split('/')[-1]}"

    def full_size_overlay(self, explanation) -> bytes:
        """The overlay on the photo as uploaded (not the working size), as PNG: built when asked."""
        full = self.photo.full_size()
        heatmap = scale(upsample(explanation.raw[self.layer], full.shape[:2]))
        return image_png(blend(full, heatmap, self.opacity, self.colormap))


def _shown(view: View, explanation, layer):
    """The overlay, or the photo itself when the map is empty (a flat colour would mean nothing)."""
    if explanation.has_evidence(layer):
        return view.overlay(explanation.maps[layer])
    return view.photo.array


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


def legend(view: View, large=False):
    """A strip of the colormap saying what its ends mean."""
    left, middle, right = st.columns([1, 4, 1.3], vertical_alignment="center")
    size = "1.2rem" if large else "0.85rem"
    left.markdown(f"<div style='text-align:right;font-size:{size}'>not used</div>", unsafe_allow_html=True)
    middle.image(legend_strip(view.colormap), width="stretch")
    right.markdown(f"<div style='font-size:{size}'>most evidence</div>", unsafe_allow_html=True)


def summary_line(view: View, predictions, html=False) -> str:
    index, _, probability = predictions[0]
    bold = (lambda text: f"<b>{text}</b>") if html else (lambda text: f"**{text}**")
    return f"{bold(view.model_name)} · top-1: {bold(class_name(view.explainer, index).rsplit(' (', 1)[0])} {probability:.0%}"


def explore(view: View, predictions):
    e = view.explain()
    heatmap = e.maps[view.layer]
    shown = _shown(view, e, view.layer)
    st.markdown(_what_it_shows(view, e))
    if view.photo.mask is not None:  # we drew the photo: show where the object really is
        shown = mark_peak(outline(shown, view.photo.mask), heatmap)
        hit = metrics.pointing_hit(heatmap, view.photo.mask)
        truth = view.photo.name.split()[1]
        predicted = view.explainer.labels[predictions[0][0]]
        verdict = "right" if predicted == truth else f"wrong (it is a {truth})"
        st.markdown(f"Ground truth (white outline): the map's peak (white cross) **{'hits' if hit else 'misses'}** "
                    f"the object; {metrics.energy_inside(heatmap, view.photo.mask):.0%} of the map's energy lies inside it. "
                    f"The model's prediction, *{predicted}*, is **{verdict}**.")
    original, blended = _photo_and_overlay()
    original.image(compute.display_jpeg(view.photo.digest, view.photo.array), caption=f"original · {view.photo.name}",
                   width="stretch")
    blended.image(image_jpeg(shown), caption=view.caption(), width="stretch")
    legend(view)

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
    status.download_button("Overlay, full size (PNG)", data=lambda: view.full_size_overlay(e),
                           file_name=f"{stem}_overlay.png", mime="image/png")
    status.download_button(
        "Side-by-side figure (PNG)", file_name=f"{stem}_figure.png", mime="image/png",
        data=lambda: figure_png(side_by_side(view.photo.array, {view.layer: shown}, view.caption())),
    )
    status.download_button("Map (.npy)", data=lambda: _npy(heatmap), file_name=f"{stem}_map.npy",
                           mime="application/octet-stream")
    if view.model_key in shipped_models() and view.photo.mask is not None:
        shortcut_lesson(view)


def presenter(view: View, predictions):
    """For a projector: one line of context, the photo and its map large, a large caption."""
    e = view.explain()
    st.markdown(f"<div class='present-line'>{summary_line(view, predictions, html=True)}</div>", unsafe_allow_html=True)
    original, blended = _photo_and_overlay()
    original.image(compute.display_jpeg(view.photo.digest, view.photo.array), width="stretch")
    blended.image(image_jpeg(_shown(view, e, view.layer)), width="stretch")
    what = "what speaks against" if view.counterfactual else "for"
    st.markdown(f"<div class='present-caption'>Where {view.model_name} looks {what} "
                f"<em>{view.label().rsplit(' (', 1)[0]}</em> at {view.layer.split('/')[-1]}</div>",
                unsafe_allow_html=True)
    legend(view, large=True)


def _photo_and_overlay():
    """Two columns, photo and overlay; on a phone they stack with the overlay first (layout.COMPACT)."""
    return st.container(key="photo_and_overlay").columns(2)


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _grid(items, columns=4):
    """items: (image, caption) pairs, laid out in rows."""
    for start in range(0, len(items), columns):
        for column, (image, caption) in zip(st.columns(columns), items[start:start + columns]):
            column.image(image_jpeg(image), caption=caption, width="stretch")


def _in_order_chart(frame: pd.DataFrame, x_label: str, domain: tuple, height: int = 260) -> None:
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


def _quick_method(view: View, over: str) -> str:
    """The chosen method, or Grad-CAM in its place for Score-CAM (said on the page): Score-CAM runs the
    model once per channel, which over many layers or networks would take minutes."""
    if view.method != "scorecam":
        return view.method
    st.caption(f"Score-CAM runs the model once per channel, which for {over} would take minutes: this uses Grad-CAM.")
    return "gradcam"


def _depth(position: int, count: int) -> str:
    return ("early", "middle", "late")[min(2, 3 * position // max(count, 1))]


def through_the_layers(view: View):
    """A scrubber through the convolution layers, first to last: one pass computes every map (at a
    small size), so each step only blends."""
    layers = view.explainer.conv_layers
    small = compute.preview(view.photo.digest, view.photo.array, SCRUB_SIDE)
    size = small.shape[:2]
    method = _quick_method(view, "every layer")
    e = view.explain(layers=layers, size=size, method=method)
    choose("scrub", layers, layers[-1])
    play, _ = st.columns([1, 5])
    playing = play.toggle("Play", key="scrub_playing", help="Steps through the layers, one every 1.5 s.")

    def scrubber():
        if playing:  # each timed rerun of this fragment moves one layer on, and starts over at the end
            position = layers.index(st.session_state["scrub"])
            st.session_state["scrub"] = layers[(position + 1) % len(layers)]
        chosen = st.select_slider("Layer", layers, key="scrub", format_func=lambda n: n.split("/")[-1])
        position = layers.index(chosen)
        h, w, c = view.explainer.layer_shape(chosen)
        st.markdown(f"**{position + 1} of {len(layers)}: {_depth(position, len(layers))}** · `{chosen}` · "
                    f"{h}×{w} cells × {c} channels")
        left, right = st.columns(2)
        left.image(image_jpeg(small), width="stretch", caption="original")
        shown = view.overlay(e.maps[chosen], small) if e.has_evidence(chosen) else small
        right.image(image_jpeg(shown), width="stretch", caption=view.caption(layer=chosen, method=method))
        legend(view)

    st.fragment(scrubber, run_every=1.5 if playing else None)()
    st.caption("Early layers respond to edges and colours all over the photo; late layers to the parts that "
               "decide the class.")


def compare_layers(view: View):
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
    maps = e.on_shared_scale() if shared else e.maps
    ordered = [name for name in layers if name in chosen]
    _grid([(view.overlay(maps[name]), layer_title(view.explainer, name)) for name in ordered])

    st.subheader("Which layer?")
    mask = view.photo.mask
    what = "the pointing game and the energy inside the object" if mask is not None else "insertion AUC"
    if st.toggle(f"Score every convolution layer ({what})", key="score_layers"):
        convs = tuple(view.explainer.conv_layers)
        slot, progress = _progress("Scoring the layers")
        scores = compute.layer_quality(view.model_key, view.photo.digest, convs, view.class_index,
                                       _quick_method(view, "every layer"), view.explainer, view.photo.array, mask,
                                       progress)
        slot.empty()
        frame = pd.DataFrame(scores).T
        frame.index = [name.split("/")[-1] for name in frame.index]
        _in_order_chart(frame, "layer, first to last", (0, 1))
        score = frame.columns[-1]  # insertion AUC, or the energy inside the object on drawn shapes
        shown = view.layer.split("/")[-1]
        here = f"; at {shown}, the layer shown: {frame[score][shown]:.2f}" if shown in frame.index else ""
        st.caption(f"Highest {score}: **{frame[score].idxmax()}** ({frame[score].max():.2f}){here}.")


def _progress(text):
    slot = st.empty()
    return slot, (lambda done: slot.progress(done, text=f"{text}: {done:.0%}"))


def faithfulness(view: View):
    """Deletion and insertion curves (RISE) against baselines, AUCs for every method, and the sanity check."""
    st.markdown(
        "**Deletion**: the map's most important pixels are blurred away first, in 50 steps; if the map is right, "
        "the model's probability for the class falls fast (lower area is better). **Insertion**: starting from a "
        "blurred photo, those pixels come back first; the probability should rise fast (higher is better). "
        "Three maps that know nothing of the model set the bar: a centred blob, random noise and the photo's edges."
    )
    methods = tuple(m for m in METHODS if m != "scorecam" or view.method == "scorecam")
    slot, progress = _progress("Scoring each method's map and the baselines")
    scored = compute.faithfulness(view.model_key, view.photo.digest, view.layer, view.class_index, methods,
                                  view.explainer, view.photo.array, progress)
    slot.empty()
    steps = np.linspace(0, 1, len(scored[view.method]["deletion_curve"]))
    shown = [view.method, "centre", "random", "sobel"]
    names = {name: TITLES.get(name, name) for name in shown}
    left, right = st.columns(2)
    for column, kind in ((left, "deletion"), (right, "insertion")):
        column.markdown(f"**{kind.capitalize()}** ({TITLES[view.method]} against the baselines)")
        column.line_chart(pd.DataFrame({names[n]: scored[n][f"{kind}_curve"] for n in shown}, index=steps),
                          x_label="share of pixels", y_label=f"p({view.label()})", height=240, color=CURVE_COLOURS)
    table = pd.DataFrame([{"map": TITLES.get(n, f"baseline: {n}"), "deletion AUC ↓": r["deletion_auc"],
                           "insertion AUC ↑": r["insertion_auc"]} for n, r in scored.items()])
    st.dataframe(table.sort_values("insertion AUC ↑", ascending=False), hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[1:]})
    if "scorecam" not in methods:
        st.caption("Score-CAM is scored when it is the chosen method (it takes seconds per map).")
    st.markdown("What the model was shown during deletion:")
    fractions = (0.0, 0.1, 0.25, 0.5)
    frames = metrics.deleted_inputs(view.explainer, view.photo.array, view.explain().maps[view.layer], fractions)
    _grid([(np.stack([f] * 3, -1) if f.ndim == 2 else f, f"{f_:.0%} taken") for f, f_ in zip(frames, fractions)])

    st.subheader("Sanity check")
    st.markdown(
        "The network's weights are replaced by random ones, from the top layer down, in a copy of the model. A map "
        "that explains *this* model must change on the way (its rank correlation with the first map falls); a map "
        "that does not (here, edges) stays at 1."
    )
    if st.toggle("Run the sanity check", key="run_sanity", help="About 4 s on MobileNetV2."):
        slot, progress = _progress("Randomising the network from the top")
        checked = compute.sanity(view.model_key, view.photo.digest, view.layer, view.class_index,
                                 _quick_method(view, "every randomised copy of the network"), view.explainer,
                                 view.photo.array, progress)
        slot.empty()
        cascade = checked["cascade"]
        picks = [cascade[i] for i in np.unique(np.linspace(0, len(cascade) - 1, 7).round().astype(int))]  # first and last
        small = compute.preview(view.photo.digest, view.photo.array, compute.SANITY_SIDE)
        _grid([(view.overlay(checked["map"], small), "the trained network")]
              + [(view.overlay(step["map"], small), f"down to {step['block']}") for step in picks], columns=8)
        _in_order_chart(pd.DataFrame({"rank correlation": [s["rank_correlation"] for s in cascade]},
                                     index=[s["block"] for s in cascade]), "randomised from the top down to", (-1, 1))
        other = checked["random_class"]
        note = (f"The map of a random other class ({class_name(view.explainer, other['class_index'])}) has rank "
                f"correlation {other['rank_correlation']:.2f} with this one.")
        empty = sum(step["map"].max() <= 0 for step in cascade)
        if empty:
            note += (f" {empty} of the {len(cascade)} randomised networks gave an empty map (no positive evidence "
                     "for the class), counted as 0.")
        st.caption(note)


def compare_classes(view: View, predictions):
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
    _grid([(view.overlay(view.explain(class_index=index).maps[view.layer]), view.label(index)) for index in chosen])


def compare_methods(view: View):
    choose("compare_methods", lambda v: isinstance(v, list) and set(v) <= set(METHODS),
           ["gradcam", "gradcam++", "layercam", "eigencam"], parse=parse_list(str))
    chosen = st.multiselect(f"Methods for {view.label()} at {view.layer}", list(METHODS), key="compare_methods",
                            format_func=TITLES.get)
    _grid([(view.overlay(view.explain(method=method).maps[view.layer]), TITLES[method]) for method in chosen])


def shortcut_lesson(view: View):
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
        columns = st.columns(2)
        for column, name in zip(columns, ("shapes", "shapes_shortcut")):
            explainer = compute.named_explainer(name)
            predicted = explainer.predict(view.photo.array, top=1)[0]
            e = compute.explain(name, view.photo.digest, (explainer.default_layer,), predicted[0], "gradcam", False,
                                explainer, view.photo.array)
            column.image(image_jpeg(view.overlay(e.maps[explainer.default_layer])), width="stretch",
                         caption=f"{cards[name]['title']}: {predicted[1]} ({predicted[2]:.0%})")


def _flip_mark():
    st.session_state["with_mark"] = not st.session_state.get("with_mark", False)


def how_it_works(view: View):
    """Grad-CAM step by step, for teaching: each step's picture right under its formula."""
    e = view.explain(method="gradcam", keep_activations=True)
    layer = view.layer
    A, alpha = e.activations[layer], e.weights[layer]
    st.markdown(
        f"Grad-CAM for **{view.label()}** at `{layer}`: {A.shape[2]} channels, each a {A.shape[0]}×{A.shape[1]} grid "
        r"$A^k$. A **channel** is one detector of the layer: a grid of how strongly one pattern appears at each "
        r"place. $y^c$ is the class's score *before* the **softmax** (the softmax turns all scores into "
        "probabilities that add up to 1; working before it keeps the map from vanishing when the model is sure)."
    )

    st.subheader("1. One weight per channel")
    st.latex(r"\alpha_k^c = \frac{1}{Z}\sum_i\sum_j \frac{\partial y^c}{\partial A^k_{ij}}")
    st.markdown(r"$\alpha_k^c$ is how much the score would rise, on average, if channel $k$ grew. "
                "The 15 largest and 15 smallest weights:")
    order = np.argsort(-alpha)
    picked = np.concatenate([order[:15], order[-15:]])
    st.bar_chart(pd.DataFrame({"channel": [f"#{k}" for k in picked], "alpha": alpha[picked]}),
                 x="channel", y="alpha", sort=False, height=240)

    st.subheader("2. The channels that add most")
    contribution = alpha * A.sum(axis=(0, 1))
    top = np.argsort(-contribution)[:6]
    _grid([(enlarge(colorize(scale(A[..., k]), view.colormap), 160), f"channel {k}: α = {alpha[k]:.2g}") for k in top],
          columns=6)

    st.subheader("3. Weighted sum, before ReLU")
    st.latex(r"S^c = \sum_k \alpha_k^c A^k")
    pre = e.pre_relu[layer]
    st.image(image_jpeg(enlarge(diverging(pre))), width=360,
             caption=f"red: for the class, blue: against (from {pre.min():.2g} to {pre.max():.2g})")

    st.subheader("4. ReLU keeps the positive evidence")
    st.latex(r"L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\left(\sum_k \alpha_k^c A^k\right)")
    st.markdown("**ReLU** sets every negative value to 0: only what speaks *for* the class stays on the map.")
    st.image(image_jpeg(enlarge(colorize(scale(e.raw[layer]), view.colormap))), width=360,
             caption="after ReLU, at layer resolution")

    st.subheader("5. Upsampled to the photo and blended")
    st.latex(r"\text{overlay} = (1-a)\cdot\text{photo} + a\cdot\text{colour}(\text{bilinear}(L^c))")
    st.image(image_jpeg(_shown(view, e, layer)), width=480, caption=f"opacity a = {view.opacity:.2f}")
