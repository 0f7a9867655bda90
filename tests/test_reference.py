"""Our maps against independent references on the real MobileNetV2 (ImageNet) and real photos."""

import numpy as np
import pytest
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
from tf_keras_vis.layercam import Layercam
from tf_keras_vis.scorecam import Scorecam
from tf_keras_vis.utils.scores import CategoricalScore

import references as ref
from conftest import PHOTO_NAMES, PHOTOS, needs_weights

pytestmark = needs_weights
LAYERS = ("out_relu", "block_13_expand_relu", "block_6_expand_relu")
FORMULAS = {
    "gradcam": lambda A, G, s: ref.gradcam(A, G),
    "gradcam++": ref.gradcam_plus_plus,
    "hirescam": lambda A, G, s: ref.hirescam(A, G),
    "xgradcam": lambda A, G, s: ref.xgradcam(A, G),
    "layercam": lambda A, G, s: ref.layercam(A, G),
    "eigencam": lambda A, G, s: ref.eigencam(A),
}


@pytest.fixture(scope="module")
def inputs(explainer):
    return {name: explainer.model.to_input(np.asarray(_photo(name))) for name in PHOTO_NAMES}


def _photo(name):
    from dashboard.engine import read_photo

    return read_photo(PHOTOS / name)


def _logit(model, x, class_index):
    return float(model(x, training=False)[0, class_index])


@pytest.mark.parametrize("photo", PHOTO_NAMES)
@pytest.mark.parametrize("method", list(FORMULAS))
def test_every_method_matches_its_paper_formula(explainer, linear_mobilenet, inputs, photo, method):
    x = inputs[photo]
    ours = explainer.explain(_photo(photo), layers=LAYERS, method=method)
    for layer in LAYERS:
        A, G = ref.activations_and_gradients(linear_mobilenet, x, layer, ours.class_index)
        expected = FORMULAS[method](A, G, _logit(linear_mobilenet, x, ours.class_index))
        assert expected.max() > 0, "the reference map is empty: the comparison would prove nothing"
        r = ref.correlation(ours.raw[layer], expected)
        assert r >= (0.99 if method == "gradcam++" else 0.999), f"{method} {layer} {photo}: r = {r:.5f}"


@pytest.mark.parametrize("photo", ["cat.bmp", "dragonfly.bmp"])
@pytest.mark.parametrize(
    "method, reference", [("gradcam", Gradcam), ("gradcam++", GradcamPlusPlus), ("layercam", Layercam)]
)
def test_gradient_methods_match_tf_keras_vis(explainer, linear_mobilenet, inputs, photo, method, reference):
    # tf-keras-vis differentiates the model's output: give it the linear head. Without
    # seek_penultimate_conv_layer=False it would walk back to the nearest Conv layer.
    ours = explainer.explain(_photo(photo), layers=LAYERS, method=method)
    tool = reference(linear_mobilenet, clone=True)
    # tf-keras-vis' Grad-CAM++ normalises alpha (the authors' code); we follow eq. 19 as
    # printed. The variants agree at the last layer only (see methods.gradcam_plus_plus).
    for layer in LAYERS[:1] if method == "gradcam++" else LAYERS:
        theirs = tool(
            CategoricalScore([ours.class_index]), inputs[photo], penultimate_layer=layer,
            seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False,
        )
        r = ref.correlation(ours.raw[layer], np.asarray(theirs)[0])
        assert r >= (0.99 if method == "gradcam++" else 0.999), f"{method} {layer}: r = {r:.5f}"


def _half_pixel_zoom(array, factors, **_):
    # tf-keras-vis upsamples Score-CAM masks with scipy zoom(order=1); the original Score-CAM
    # code uses half-pixel bilinear (torch align_corners=False), as we do. Match the original.
    import tensorflow as tf

    size = [round(n * f) for n, f in zip(array.shape[1:3], factors[1:3])]
    return tf.image.resize(array, size, method="bilinear").numpy()


@pytest.mark.parametrize("layer", ["block_13_expand_relu", "block_6_expand_relu"])
def test_scorecam_matches_tf_keras_vis_and_the_original_code(explainer, linear_mobilenet, inputs, layer, monkeypatch):
    import tf_keras_vis.scorecam

    photo = "cat.bmp"
    ours = explainer.explain(_photo(photo), layers=[layer], method="scorecam")
    monkeypatch.setattr(tf_keras_vis.scorecam, "zoom", _half_pixel_zoom)
    theirs = Scorecam(linear_mobilenet, clone=True)(
        CategoricalScore([ours.class_index]), inputs[photo], penultimate_layer=layer,
        seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False,
    )
    r = ref.correlation(ours.raw[layer], np.asarray(theirs)[0])
    assert r >= 0.999, f"tf-keras-vis {layer}: r = {r:.5f}"

    A, _ = ref.activations_and_gradients(linear_mobilenet, inputs[photo], layer, ours.class_index)
    weights = ref.scorecam_weights(linear_mobilenet, inputs[photo], A, ours.class_index)
    assert ref.correlation(ours.weights[layer], weights) >= 0.999
    r = ref.correlation(ours.raw[layer], ref.relu(np.tensordot(A, weights, axes=([2], [0]))))
    assert r >= 0.999, f"original code {layer}: r = {r:.5f}"


# Where each shared photo's object is: (left, top, right, bottom) as fractions of the width and
# height, drawn by eye around the bird's body, the cat, the dragonfly's head and thorax, Grace
# Hopper's uniform (below the collar) and the hot dog in its bun. Each covers 20-45% of the photo.
OBJECTS = {
    "bird.bmp": ("chickadee", (0.05, 0.15, 0.75, 0.75)),
    "cat.bmp": ("Egyptian_cat", (0.1, 0.1, 0.75, 1.0)),
    "dragonfly.bmp": ("dragonfly", (0.25, 0.25, 0.75, 0.8)),
    "grace_hopper.bmp": ("military_uniform", (0.0, 0.55, 1.0, 1.0)),
    "hot_dog.jpg": ("hotdog", (0.15, 0.1, 0.95, 0.5)),
}


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_maps_point_at_the_object_and_top1_is_right(explainer, method):
    for name, (label, (left, top, right, bottom)) in OBJECTS.items():
        photo = _photo(name)
        assert explainer.predict(photo, top=1)[0][1] == label
        heat = explainer.explain(photo, method=method).maps[explainer.default_layer]
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        height, width = heat.shape
        assert left <= x / width <= right and top <= y / height <= bottom, f"{method} {name}: peak at ({x}, {y})"


def test_counterfactual_is_relu_of_minus_the_weighted_sum(explainer):
    photo = _photo("cat.bmp")
    plain = explainer.explain(photo, layers=LAYERS, class_index="tabby")
    against = explainer.explain(photo, layers=LAYERS, class_index="tabby", counterfactual=True)
    for layer in LAYERS:
        np.testing.assert_allclose(against.raw[layer], np.maximum(-plain.pre_relu[layer], 0), rtol=1e-5, atol=1e-6)
        assert against.raw[layer].max() > 0
        assert np.all((plain.raw[layer] == 0) | (against.raw[layer] == 0))


def test_same_call_twice_gives_the_same_bytes(explainer):
    photo = _photo("bird.bmp")
    first = explainer.explain(photo, layers=LAYERS)
    second = explainer.explain(photo, layers=LAYERS)
    for layer in LAYERS:
        assert first.maps[layer].tobytes() == second.maps[layer].tobytes()
        assert first.raw[layer].tobytes() == second.raw[layer].tobytes()


def test_maps_have_the_photo_size_and_unit_range(explainer):
    photo = _photo("grace_hopper.bmp")  # 512 wide x 600 high
    e = explainer.explain(photo, layers=LAYERS)
    for layer in LAYERS:
        heat = e.maps[layer]
        assert heat.shape == photo.shape[:2] and heat.dtype == np.float32
        assert heat.min() == 0 and 0.99 < heat.max() <= 1 and not np.isnan(heat).any()
        assert e.raw[layer].shape == explainer.layer_shape(layer)[:2]


def test_repeated_calls_do_not_retrace(monkeypatch):
    # Count the compilations that explain itself causes: one for a layer set, whatever the class
    # or the order the layers are asked in.
    from dashboard.engine import Explainer, graph

    compiled = []
    original = graph.compile_pass
    monkeypatch.setattr(graph, "compile_pass", lambda *args: compiled.append(args[2]) or original(*args))
    explainer = Explainer("mobilenet_v2")
    photo = _photo("cat.bmp")
    for class_index in (None, 3, 281, 285):
        explainer.explain(photo, layers=list(LAYERS), class_index=class_index)
        explainer.explain(photo, layers=list(reversed(LAYERS)), class_index=class_index, method="layercam")
    assert len(compiled) == 1 and sorted(compiled[0]) == sorted(LAYERS)
