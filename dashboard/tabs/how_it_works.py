"""How it works: Grad-CAM step by step, for teaching, each step's picture right under its formula."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.engine.explainer import scale
from dashboard.engine.render import colorize, diverging, enlarge, image_jpeg
from dashboard.view import View, grid

TITLE = "How it works"
KEYS = ()


def draw(view: View, predictions) -> None:
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
    grid([(enlarge(colorize(scale(A[..., k]), view.colormap), 160), f"channel {k}: α = {alpha[k]:.2g}") for k in top],
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
    st.image(image_jpeg(view.overlay(e.maps[layer]) if e.has_evidence(layer) else view.photo.array), width=480, caption=f"opacity a = {view.opacity:.2f}")
