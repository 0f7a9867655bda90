"""Faithfulness: is the map right? Deletion and insertion curves (RISE) against baselines, AUCs for
every method, and the cascading-randomisation sanity check."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import compute
from dashboard.engine import SLOW, TITLES
from dashboard.sidebar import class_name
from dashboard.view import View, grid, in_order_chart, progress_bar

TITLE = "Faithfulness"
KEYS = ()
# Faithfulness curves: the chosen method in the accent colour, the three baselines far from it and each other.
CURVE_COLOURS = ["#ff7f0e", "#1f77b4", "#9e9e9e", "#2ca02c"]


def draw(view: View, predictions) -> None:
    """Deletion and insertion curves (RISE) against baselines, AUCs for every method, and the sanity check."""
    st.markdown(
        "**Deletion**: the map's most important pixels are blurred away first, in 50 steps; if the map is right, "
        "the model's probability for the class falls fast (lower area is better). **Insertion**: starting from a "
        "blurred photo, those pixels come back first; the probability should rise fast (higher is better). "
        "Three maps that know nothing of the model set the bar: a centred blob, random noise and the photo's edges."
    )
    methods = tuple(m for m in view.explainer.methods if m not in SLOW or m == view.method)  # a slow one only when chosen
    slot, progress = progress_bar("Scoring each method's map and the baselines")
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
    if SLOW - set(methods):
        st.caption(f"{', '.join(TITLES[m] for m in sorted(SLOW - set(methods)))} is scored when it is the chosen "
                   "method (it takes seconds per map).")
    st.markdown("What the model was shown during deletion:")
    fractions = (0.0, 0.1, 0.25, 0.5)
    frames = compute.deleted_inputs(view.model_key, view.photo.digest, view.layer, view.class_index, view.method,
                                    view.counterfactual, view.explainer, view.photo.array,
                                    view.explain().maps[view.layer], fractions)
    grid([(np.stack([f] * 3, -1) if f.ndim == 2 else f, f"{f_:.0%} taken") for f, f_ in zip(frames, fractions)])

    st.subheader("Sanity check")
    st.markdown(
        "The network's weights are replaced by random ones, from the top layer down, in a copy of the model. A map "
        "that explains *this* model must change on the way (its rank correlation with the first map falls); a map "
        "that does not (here, edges) stays at 1."
    )
    if st.toggle("Run the sanity check", key="run_sanity", help="About 4 s on MobileNetV2."):
        slot, progress = progress_bar("Randomising the network from the top")
        checked = compute.sanity(view.model_key, view.photo.digest, view.layer, view.class_index,
                                 view.quick_method("every randomised copy of the network"), view.explainer,
                                 view.photo.array, progress)
        slot.empty()
        cascade = checked["cascade"]
        picks = [cascade[i] for i in np.unique(np.linspace(0, len(cascade) - 1, 7).round().astype(int))]  # first and last
        small = compute.preview(view.photo.digest, view.photo.array, compute.SANITY_SIDE)
        grid([(view.overlay(checked["map"], small), "the trained network")]
              + [(view.overlay(step["map"], small), f"down to {step['block']}") for step in picks], columns=8)
        in_order_chart(pd.DataFrame({"rank correlation": [s["rank_correlation"] for s in cascade]},
                                     index=[s["block"] for s in cascade]), "randomised from the top down to", (-1, 1))
        other = checked["random_class"]
        note = (f"The map of a random other class ({class_name(view.explainer, other['class_index'])}) has rank "
                f"correlation {other['rank_correlation']:.2f} with this one.")
        empty = sum(step["map"].max() <= 0 for step in cascade)
        if empty:
            note += (f" {empty} of the {len(cascade)} randomised networks gave an empty map (no positive evidence "
                     "for the class), counted as 0.")
        st.caption(note)
