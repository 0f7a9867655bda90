"""Is the map right? Deletion/insertion curves against a plain one-image-at-a-time reference, the
baselines, and the sanity check on the real MobileNetV2."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from scipy import ndimage

from conftest import PHOTOS, needs_weights
from dashboard.engine import metrics, read_photo

pytestmark = needs_weights


def _reference_curves(network, preprocess, photo, saliency, class_index, steps=50):
    """RISE's protocol written plainly: for each step, one image, one forward pass."""
    height, width = network.input_shape[1:3]
    pixels = np.asarray(Image.fromarray(photo).resize((width, height), Image.BILINEAR), np.float32)
    sigma = 5.0 * height / 224
    soft = np.stack([ndimage.gaussian_filter(pixels[..., c], sigma) for c in range(pixels.shape[2])], axis=-1)
    ranked = tf.image.resize(saliency[None, ..., None].astype(np.float32), (height, width), method="bilinear")
    order = np.argsort(-np.asarray(ranked).ravel(), kind="stable")
    deletion, insertion = [], []
    for step in range(steps + 1):
        taken = np.zeros(height * width, bool)
        taken[order[: int(np.ceil(step * height * width / steps))]] = True
        taken = taken.reshape(height, width, 1)
        for curve, image in ((deletion, np.where(taken, soft, pixels)), (insertion, np.where(taken, pixels, soft))):
            probabilities = network(preprocess(image[None].copy()), training=False).numpy()[0]
            curve.append(float(probabilities[class_index]))
    return np.array(deletion), np.array(insertion)


@pytest.mark.parametrize("photo_name", ["cat.bmp", "hot_dog.jpg"])
def test_curves_and_aucs_match_a_plain_reference(explainer, photo_name):
    photo = read_photo(PHOTOS / photo_name)
    e = explainer.explain(photo)
    ours = metrics.curves(explainer, photo, e.maps[explainer.default_layer], e.class_index)
    deletion, insertion = _reference_curves(explainer.model.network, explainer.model.preprocess, photo,
                                            e.maps[explainer.default_layer], e.class_index)
    np.testing.assert_allclose(ours["deletion_curve"], deletion, atol=1e-4)
    np.testing.assert_allclose(ours["insertion_curve"], insertion, atol=1e-4)
    assert ours["deletion_auc"] == pytest.approx(np.trapezoid(deletion, dx=1 / 50), abs=1e-4)
    assert ours["insertion_auc"] == pytest.approx(np.trapezoid(insertion, dx=1 / 50), abs=1e-4)
    assert deletion[0] == pytest.approx(explainer.predict(photo, top=1)[0][2], abs=1e-4)  # the untouched photo first
    assert ours["deletion_auc"] < ours["insertion_auc"]  # a real map: removing its pixels hurts, revealing them helps


def test_the_random_baseline_is_beaten_and_curves_have_51_points(explainer):
    photo = read_photo(PHOTOS / "dragonfly.bmp")
    e = explainer.explain(photo)
    ours = metrics.curves(explainer, photo, e.maps[explainer.default_layer], e.class_index)
    random = metrics.curves(explainer, photo, metrics.baselines(photo)["random"], e.class_index)
    assert len(ours["deletion_curve"]) == len(ours["insertion_curve"]) == 51
    assert ours["insertion_auc"] > random["insertion_auc"] and ours["deletion_auc"] < random["deletion_auc"]


def test_the_sanity_check_decorrelates_grad_cam_and_not_sobel(explainer):
    photo = read_photo(PHOTOS / "cat.bmp")
    before = [w.copy() for w in explainer.model.network.get_weights()[-4:]]
    gradcam = metrics.sanity(explainer, photo, "out_relu")
    steps = gradcam["cascade"]
    assert steps[0]["randomised_from"] == "predictions" and len(steps) > 10
    assert all(step["rank_correlation"] < 0.5 for step in steps[2:]), [s["rank_correlation"] for s in steps]
    assert all(np.isfinite(step["rank_correlation"]) for step in steps)
    sobel = metrics.sanity(explainer, photo, "out_relu", method="sobel")
    assert all(step["rank_correlation"] == pytest.approx(1.0) for step in sobel["cascade"])
    after = explainer.model.network.get_weights()[-4:]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # the cached model was never touched
    assert gradcam["random_class"]["class_index"] != explainer.explain(photo).class_index


def test_a_map_without_ranking_counts_as_zero():
    assert metrics.rank_correlation(np.zeros((7, 7)), np.random.default_rng(0).random((7, 7))) == 0.0
    assert metrics.rank_correlation(np.arange(9.0), np.arange(9.0)) == pytest.approx(1.0)


def test_the_cli_reports_metrics_per_layer(capsys):
    from dashboard.cli import main

    assert main(["-i", str(PHOTOS / "cat.bmp"), "--model", "mobilenet", "--json", "--metrics",
                 "-l", "conv_pw_13_relu", "-l", "conv_pw_11_relu"]) == 0
    report = json.loads(capsys.readouterr().out)["metrics"]
    assert list(report) == ["conv_pw_11_relu", "conv_pw_13_relu"]
    for layer in report.values():
        assert len(layer["deletion_curve"]) == 51 and len(layer["insertion_curve"]) == 51
        assert 0 <= layer["deletion_auc"] <= 1 and 0 <= layer["insertion_auc"] <= 1
        assert set(layer["baselines"]) == {"centre", "random", "sobel"}
        assert all(set(b) == {"deletion_auc", "insertion_auc"} for b in layer["baselines"].values())
        assert all(set(step) == {"randomised_from", "rank_correlation"} for step in layer["sanity"]["cascade"])
        assert set(layer["sanity"]["random_class"]) == {"class_index", "rank_correlation"}


def test_pixel_flipping_with_a_fixed_baseline_matches_quantus(explainer):
    # Quantus' PixelFlipping is our deletion curve with a constant baseline ("black": the input's
    # minimum) instead of the blurred photo. It ranks pixel-channels, so one of our steps of 1024
    # pixels is three of its steps; ties would be ordered differently, so the map has none.
    import quantus
    from scipy.stats import rankdata

    photo = read_photo(PHOTOS / "cat.bmp")
    e = explainer.explain(photo)
    saliency = tf.image.resize(e.maps["out_relu"][None, ..., None], (224, 224)).numpy()[0, ..., 0]
    saliency = (rankdata(saliency.ravel(), method="ordinal").reshape(224, 224) / saliency.size).astype(np.float32)
    pixels = explainer.model.to_raw_input(photo)
    ours = metrics.curves(explainer, photo, saliency, e.class_index, steps=49, baseline=float(pixels.min()))
    flipping = quantus.PixelFlipping(features_in_step=1024, perturb_baseline="black", normalise=False, abs=False,
                                     disable_warnings=True)
    theirs = flipping(model=explainer.model.network, x_batch=explainer.model.to_input(photo),
                      y_batch=np.array([e.class_index]), a_batch=saliency[None], channel_first=False, softmax=True)
    np.testing.assert_allclose(ours["deletion_curve"][1:], np.array(theirs[0])[2::3], atol=1e-4)
