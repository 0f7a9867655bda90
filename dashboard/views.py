"""The tabs: Explore, Compare layers, Compare classes, Compare methods, How it works."""

from dataclasses import dataclass

import numpy as np
import streamlit as st

from dashboard import compute
from dashboard.engine import METHODS, TITLES, Explainer
from dashboard.engine.explainer import scale
from dashboard.demo.evaluate import energy_inside, pointing_hit
from dashboard.engine.graph import upsample
from dashboard.engine.render import (blend, colorize, diverging, enlarge, figure_png, image_jpeg, image_png, mark_peak,
                                     outline, side_by_side)
from dashboard.sidebar import Photo


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

    def explain(self, layers=None, class_index=None, method=None, keep_activations=False):
        """The cached explanation; a fresh Score-CAM shows its progress (a cached one shows nothing)."""
        method = method or self.method
        slot = st.empty()

        def progress(done):
            slot.progress(done, text=f"Score-CAM runs the model once per channel: {done:.0%} of the channels")

        explanation = compute.explain(
            self.model_key, self.photo.digest, tuple(layers or [self.layer]),
            self.class_index if class_index is None else class_index, method, self.counterfactual,
            self.explainer, self.photo.array, progress=progress, keep_activations=keep_activations,
        )
        slot.empty()
        return explanation

    def overlay(self, heatmap):
        return blend(self.photo.array, heatmap, self.opacity, self.colormap)

    def full_size_overlay(self, explanation) -> bytes:
        """The overlay on the photo as uploaded (not the working size), as PNG: built when asked."""
        full = self.photo.full_size()
        heatmap = scale(upsample(explanation.raw[self.layer], full.shape[:2]))
        return image_png(blend(full, heatmap, self.opacity, self.colormap))

    def label(self, class_index=None):
        index = self.class_index if class_index is None else class_index
        return f"{self.explainer.labels[index]} ({index})"


def _no_evidence_note(explanation, layer):
    if not explanation.has_evidence(layer):
        st.info("No positive evidence for this class at this layer: the map is all zero.")


def explore(view: View):
    e = view.explain()
    heatmap = e.maps[view.layer]
    overlay = view.overlay(heatmap)
    if view.photo.mask is not None:  # we drew the photo: show where the object really is
        overlay = mark_peak(outline(overlay, view.photo.mask), heatmap)
        hit = pointing_hit(heatmap, view.photo.mask)
        st.markdown(f"Ground truth (white outline): the map's peak (white cross) **{'hits' if hit else 'misses'}** "
                    f"the object; {energy_inside(heatmap, view.photo.mask):.0%} of the map's energy lies inside it.")
    original, blended = st.columns(2)
    original.image(compute.display_jpeg(view.photo.digest, view.photo.array), caption=f"original · {view.photo.name}",
                   width="stretch")
    blended.image(image_jpeg(overlay), caption=f"{TITLES[view.method]} for {view.label()} at {view.layer}", width="stretch")
    _no_evidence_note(e, view.layer)

    raw, status = st.columns([3, 2])
    key = (view.model_key, view.photo.digest, view.layer, view.class_index, view.method, view.counterfactual)
    raw.image(compute.heatmap_with_colour_bar(key, e.raw[view.layer], view.colormap), width="content")
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
    title = f"{view.label()} · {TITLES[view.method]}{' (counterfactual)' if view.counterfactual else ''}"
    status.download_button(
        "Side-by-side figure (PNG)", file_name=f"{stem}_figure.png", mime="image/png",
        data=lambda: figure_png(side_by_side(view.photo.array, {view.layer: overlay}, title)),
    )
    status.download_button("Map (.npy)", data=lambda: _npy(heatmap), file_name=f"{stem}_map.npy",
                           mime="application/octet-stream")


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _grid(items, columns=4):
    """items: (image, caption) pairs, laid out in rows."""
    for start in range(0, len(items), columns):
        for column, (image, caption) in zip(st.columns(columns), items[start:start + columns]):
            column.image(image_jpeg(image), caption=caption, width="stretch")


def compare_layers(view: View):
    layers = view.explainer.layers
    if st.session_state.get("_compare_layers_model") != view.model_key:
        st.session_state["compare_layers"] = view.explainer.stage_ends(4)
        st.session_state["_compare_layers_model"] = view.model_key
    chosen = st.multiselect("Layers (2-8), computed in one pass", layers, key="compare_layers", max_selections=8)
    shared = st.toggle("Shared colour scale", key="shared_scale",
                       help="Off: each map is scaled to its own 0..1. On: one scale for all, from the largest value.")
    if len(chosen) < 2:
        st.info("Pick at least two layers.")
        return
    e = view.explain(layers=chosen)
    maps = e.on_shared_scale() if shared else e.maps
    ordered = [name for name in layers if name in chosen]
    _grid([(view.overlay(maps[name]), "{} · {}×{}".format(name, *view.explainer.layer_shape(name)[:2]))
           for name in ordered])


def compare_classes(view: View, predictions):
    labels = view.explainer.labels
    top = [index for index, _, _ in predictions]
    if st.session_state.get("_compare_classes_context") != (view.model_key, view.photo.digest):
        st.session_state["compare_classes"] = top[:3]
        st.session_state["_compare_classes_context"] = (view.model_key, view.photo.digest)
    options = top + [i for i in range(len(labels)) if i not in top]
    chosen = st.multiselect(f"Classes at {view.layer}", options, key="compare_classes", max_selections=8,
                            format_func=lambda i: f"{labels[i]} ({i})")
    items = []
    for index in chosen:
        e = view.explain(class_index=index)
        items.append((view.overlay(e.maps[view.layer]), view.label(index)))
    _grid(items)


def compare_methods(view: View):
    st.session_state.setdefault("compare_methods", ["gradcam", "gradcam++", "layercam", "eigencam"])
    chosen = st.multiselect(f"Methods for {view.label()} at {view.layer}", list(METHODS), key="compare_methods",
                            format_func=TITLES.get)
    items = []
    for method in chosen:
        e = view.explain(method=method)
        items.append((view.overlay(e.maps[view.layer]), TITLES[method]))
    _grid(items)


def how_it_works(view: View):
    """Grad-CAM step by step, for teaching."""
    e = view.explain(method="gradcam", keep_activations=True)
    layer = view.layer
    A, alpha = e.activations[layer], e.weights[layer]
    st.markdown(f"Grad-CAM for **{view.label()}** at `{layer}` ({A.shape[0]}×{A.shape[1]} cells, {A.shape[2]} channels A^k). "
                "y^c is the class score *before* the softmax.")

    st.subheader("1. One weight per channel")
    st.latex(r"\alpha_k^c = \frac{1}{Z}\sum_i\sum_j \frac{\partial y^c}{\partial A^k_{ij}}")
    st.bar_chart(np.sort(alpha)[::-1], x_label="channels, sorted by weight", y_label="alpha", height=220)

    st.subheader("2. The channels that add most")
    contribution = alpha * A.sum(axis=(0, 1))
    top = np.argsort(-contribution)[:6]
    _grid([(enlarge(colorize(scale(A[..., k]), view.colormap), 160),
            f"channel {k}: alpha = {alpha[k]:.2g}") for k in top], columns=6)

    st.subheader("3. Weighted sum, before ReLU")
    st.latex(r"S^c = \sum_k \alpha_k^c A^k")
    pre = e.pre_relu[layer]
    left, right = st.columns(2)
    left.image(enlarge(diverging(pre)), width="stretch",
               caption=f"red: for the class, blue: against (min {pre.min():.2g}, max {pre.max():.2g})")

    st.subheader("4. ReLU keeps the positive evidence")
    st.latex(r"L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\left(\sum_k \alpha_k^c A^k\right)")
    right.image(enlarge(colorize(scale(e.raw[layer]), view.colormap)), width="stretch",
                caption="after ReLU, at layer resolution")

    st.subheader("5. Upsampled to the photo and blended")
    st.latex(r"\text{overlay} = (1-a)\cdot\text{photo} + a\cdot\text{colour}(\text{bilinear}(L^c))")
    st.image(view.overlay(e.maps[layer]), width=480, caption=f"opacity a = {view.opacity:.2f}")
