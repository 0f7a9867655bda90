"""The shapes world: a generator with ground truth, and the two models the project trains and ships."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from dashboard.demo.evaluate import evaluate
from dashboard.engine.metrics import energy_inside, pointing_hit
from dashboard.demo.shapes import CLASSES, MARK, SIZE, dataset, draw
from dashboard.engine import Explainer, load_model
from dashboard.engine.models import SHIPPED_MODELS


def test_the_generator_is_deterministic():
    first, second = dataset(5, 6, mark="random"), dataset(5, 6, mark="random")
    for a, b in zip(first, second):
        assert a.tobytes() == b.tobytes()
    assert dataset(6, 6)[0].tobytes() != first[0].tobytes()
    images, labels, masks = first
    assert images.shape == (6, SIZE, SIZE, 3) and images.dtype == np.uint8 and masks.shape == (6, SIZE, SIZE)


@pytest.mark.parametrize("seed", range(10))
def test_the_mask_is_exactly_what_is_drawn(seed):
    # On an empty black canvas with no noise or clutter, the drawn pixels are the mask.
    rng = np.random.default_rng(seed)
    sample = draw(rng, label=seed % len(CLASSES), noise=0, clutter=False, background=(0, 0, 0))
    drawn = sample.image.any(axis=-1)
    assert drawn.sum() > 100
    assert (drawn == sample.mask).all()
    x0, y0, x1, y1 = sample.box
    assert sample.mask[y0:y1, x0:x1].sum() == sample.mask.sum()


def test_the_mark_sits_in_its_corner_and_off_the_object():
    rng = np.random.default_rng(3)
    sample = draw(rng, label=2, mark=True, noise=0)
    x0, y0, x1, y1 = MARK
    assert (sample.image[y0:y1, x0:x1] == (0, 0, 255)).all()  # class 2's colour
    assert not sample.mask[y0:y1, x0:x1].any()


def test_pointing_and_energy_measures():
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:4] = True
    heat = np.zeros((10, 10), np.float32)
    heat[3, 3], heat[8, 8] = 1.0, 0.5
    assert pointing_hit(heat, mask, tolerance=0) and energy_inside(heat, mask) == pytest.approx(1 / 1.5)
    heat[6, 3] = 2.0  # three pixels below the object
    assert not pointing_hit(heat, mask, tolerance=0) and pointing_hit(heat, mask, tolerance=3)
    assert not pointing_hit(np.zeros((10, 10)), mask) and energy_inside(np.zeros((10, 10)), mask) == 0


def _card(name):
    return json.loads((SHIPPED_MODELS / f"{name}.json").read_text())


def test_both_models_ship_small_with_their_cards():
    for name in ("shapes", "shapes_shortcut", "shapes_vit"):
        assert (SHIPPED_MODELS / f"{name}.keras").stat().st_size < 3_000_000
        assert _card(name)["labels"] == list(CLASSES)


@pytest.fixture(scope="module")
def shapes():
    return Explainer(load_model("shapes"))


def test_the_shipped_model_is_accurate_and_points_at_the_object(shapes):
    images, labels, _ = dataset(11, 300)  # fresh images: training used seeds 1-3
    predicted = [shapes.predict(image, top=1)[0][0] for image in images]
    assert np.mean(np.array(predicted) == labels) >= 0.95
    results = evaluate(shapes, [shapes.default_layer], ["gradcam"], count=100, seed=12)
    pointing, energy = results["gradcam", shapes.default_layer]
    assert pointing >= 0.90, pointing
    assert energy > 0.3, energy


def test_the_shortcut_model_looks_at_the_mark():
    shortcut = Explainer(load_model("shapes_shortcut"))
    mark = np.zeros((SIZE, SIZE), bool)
    mark[:16, :16] = True  # the mark's 16x16 corner: 1.6% of the image
    images, labels, masks = dataset(13, 40, mark="class")

    def measure(layer, method):
        maps = [shortcut.explain(image, layers=[layer], class_index=int(label), method=method).maps[layer]
                for image, label in zip(images, labels)]
        return (np.mean([pointing_hit(m, mark, tolerance=0) for m in maps]),
                np.mean([energy_inside(m, mark) for m in maps]),
                np.mean([energy_inside(m, mask) for m, mask in zip(maps, masks)]))

    # At 32x32 (block2), Layer-CAM's peak is on the mark in every image, with about half the energy.
    peak, on_mark, on_object = measure("block2_relu2", "layercam")
    assert peak >= 0.9 and on_mark >= 0.4 and on_mark > 3 * on_object, (peak, on_mark, on_object)
    # At the default 16x16 layer, Grad-CAM still weighs the mark's corner far above the object.
    _, on_mark, on_object = measure(shortcut.default_layer, "gradcam")
    assert on_mark > 2 * on_object, (on_mark, on_object)
    # Without the mark the shortcut model is lost, while the clean model is not: measured on fresh images.
    images, labels, _ = dataset(14, 200, mark="none")
    clean = Explainer(load_model("shapes"))
    accuracy = {name: np.mean([model.predict(image, top=1)[0][0] for image in images] == labels)
                for name, model in (("clean", clean), ("shortcut", shortcut))}
    assert accuracy["clean"] >= 0.95 and accuracy["shortcut"] < accuracy["clean"] - 0.2, accuracy


def test_the_app_starts_on_shapes_when_imagenet_weights_are_unavailable(monkeypatch):
    import keras
    import streamlit as st

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: no network")

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    assert not at.exception and not at.error
    assert len(at.warning) == 1 and "offline Shapes model" in at.warning[0].value
    assert at.sidebar.selectbox(key="model").value == "shapes"
    assert at.session_state["photo_source"] == "drawn"
    assert any("Ground truth" in m.value for m in at.markdown)
    at.sidebar.button(key="draw").click().run()  # draw a new sample: still working
    assert not at.exception and not at.error
    # The shortcut lesson: the same drawing under both models; the mark goes on in one click.
    assert any("A model that learned a shortcut" in m.value for m in at.markdown)
    assert any("100%" in m.value and "19.6%" in m.value for m in at.markdown)
    at.button(key="flip_mark").click().run()
    assert at.session_state["with_mark"] is True and not at.exception
    captions = [image.proto.imgs[0].caption for image in at.main.get("image")]
    assert any(c.startswith("Shapes (offline):") for c in captions)
    assert any(c.startswith("Shapes with a shortcut:") for c in captions)
    st.cache_resource.clear()  # later tests load the real MobileNetV2 again
