"""Model handling: nested transfer models, logits before softmax, the zoo, untrusted files."""

import keras
import numpy as np
import pytest

import references as ref
from conftest import PHOTOS, needs_weights
from dashboard.engine import ZOO, Explainer, InputError, load_model, read_photo

INNER = ("block_13_expand_relu", "out_relu")


def _imagenet_head(linear_mobilenet, activation="softmax"):
    """A Dense layer carrying MobileNetV2's own ImageNet classifier weights."""
    dense = keras.layers.Dense(1000, activation=activation, name="classifier")
    dense.build((None, 1280))
    dense.set_weights(linear_mobilenet.get_layer("predictions").get_weights())
    return dense


def _check_against_flat(explainer, linear_mobilenet, photo, prefix):
    e = explainer.explain(photo, layers=[prefix + name for name in INNER])
    x = load_model("mobilenet_v2").to_input(photo)
    assert e.class_index == 285 and e.label == "285"  # Egyptian_cat; no labels given
    for name in INNER:
        A, G = ref.activations_and_gradients(linear_mobilenet, x, name, e.class_index)
        r = ref.correlation(e.raw[prefix + name], ref.gradcam(A, G))
        assert r >= 0.999, f"{name}: r = {r:.5f}"


@needs_weights
def test_base_model_nested_in_a_sequential(linear_mobilenet):
    base = keras.applications.MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
    base.trainable = False  # as in transfer learning: the tape must still reach frozen layers
    model = keras.Sequential([keras.Input((224, 224, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              _imagenet_head(linear_mobilenet)])
    explainer = Explainer(model, preprocess="tf")
    prefix = base.name + "/"
    assert prefix + "block_6_expand_relu" in explainer.layers
    assert explainer.default_layer == prefix + "out_relu"
    assert explainer.layers.index(prefix + "block_6_expand_relu") < explainer.layers.index(prefix + "out_relu")
    _check_against_flat(explainer, linear_mobilenet, read_photo(PHOTOS / "cat.bmp"), prefix)


@needs_weights
def test_base_model_nested_in_a_functional_model_with_rescaling_in_front(linear_mobilenet):
    base = keras.applications.MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # raw 0..255 pixels in, like many user models
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = _imagenet_head(linear_mobilenet)(x)
    explainer = Explainer(keras.Model(inputs, outputs), preprocess="none")
    assert not any("rescaling" in name for name in explainer.layers)
    _check_against_flat(explainer, linear_mobilenet, read_photo(PHOTOS / "cat.bmp"), base.name + "/")


@needs_weights
def test_nested_layer_can_be_named_without_its_model(linear_mobilenet):
    base = keras.applications.MobileNetV2(include_top=False, weights="imagenet", input_shape=(224, 224, 3))
    model = keras.Sequential([keras.Input((224, 224, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              _imagenet_head(linear_mobilenet)])
    e = Explainer(model, preprocess="tf").explain(read_photo(PHOTOS / "cat.bmp"), layers="out_relu")
    assert list(e.maps) == [base.name + "/out_relu"]


@needs_weights
def test_saturated_softmax_still_gives_the_logit_map(linear_mobilenet, explainer):
    inputs = keras.Input((224, 224, 3))
    logits = linear_mobilenet(inputs)
    outputs = keras.layers.Activation("softmax")(keras.layers.Rescaling(100.0)(logits))
    saturated = keras.Model(inputs, outputs)
    photo = read_photo(PHOTOS / "dragonfly.bmp")
    x = explainer.model.to_input(photo)
    assert float(saturated(x).numpy().max()) > 0.99999  # the softmax is saturated

    # The trap is real: differentiating the probability gives an all-zero Grad-CAM map.
    import tensorflow as tf
    probe = keras.Model(linear_mobilenet.inputs, [linear_mobilenet.get_layer("out_relu").output, linear_mobilenet.output])
    with tf.GradientTape() as tape:
        A, logits = probe(x, training=False)
        p = tf.nn.softmax(100.0 * logits)
        top = p[0, int(np.argmax(p[0]))]
    naive = ref.gradcam(A[0].numpy(), tape.gradient(top, A)[0].numpy())

    e = Explainer(saturated, preprocess="tf").explain(photo, layers=f"{linear_mobilenet.name}/out_relu")
    ours = e.raw[f"{linear_mobilenet.name}/out_relu"]
    expected = explainer.explain(photo).raw["out_relu"]
    assert ours.max() > 0 and e.has_evidence(f"{linear_mobilenet.name}/out_relu")
    assert ref.correlation(ours, expected) >= 0.999
    assert naive.max() < 1e-3 * ours.max()


def test_a_built_model_is_never_mutated():
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    explainer = Explainer(model)
    explainer.explain(np.zeros((40, 50, 3), np.uint8), class_index=2)
    assert model.layers[-1].activation is keras.activations.softmax
    assert all("call" not in layer.__dict__ for layer in model.layers)


def test_an_all_zero_map_is_reported_never_nan():
    # A model whose last conv is all zeros: no positive evidence for any class.
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3, kernel_initializer="zeros"),
                              keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(2)])
    e = Explainer(model).explain(np.full((20, 20, 3), 128, np.uint8))
    layer = next(iter(e.maps))
    assert not e.has_evidence(layer)
    assert not np.isnan(e.maps[layer]).any() and e.maps[layer].max() == 0


@pytest.mark.parametrize("name", list(ZOO))
def test_every_zoo_model_builds_offers_layers_and_explains(name):
    explainer = Explainer(load_model(name, weights=None))
    assert explainer.model.input_size == (ZOO[name].size, ZOO[name].size)
    assert len(explainer.layers) >= 5
    assert len(explainer.labels) == 1000
    e = explainer.explain(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8))
    heat = e.maps[explainer.default_layer]
    assert heat.shape == (90, 120) and not np.isnan(heat).any()
    h, w, _ = explainer.layer_shape(explainer.default_layer)
    assert h > 1 and w > 1


# Untrusted model files --------------------------------------------------------------------------

MARKER = []


def _leave_a_mark(x):
    MARKER.append("ran")
    return x


def _small_model(extra=None):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    if extra is not None:
        x = extra(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_a_lambda_layer_is_refused_and_never_runs(tmp_path, suffix):
    path = tmp_path / f"lambda{suffix}"
    _small_model(keras.layers.Lambda(lambda x: _leave_a_mark(x))).save(path)
    MARKER.clear()
    with pytest.raises(InputError, match="refused.*Lambda"):
        load_model(str(path))
    assert MARKER == []


def test_an_unknown_custom_layer_is_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="outside")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    path = tmp_path / "custom.keras"
    _small_model(Doubler()).save(path)
    keras.saving.get_custom_objects().pop("outside>Doubler")
    with pytest.raises(InputError, match="refused.*custom code"):
        load_model(str(path))


def test_a_plain_model_file_loads_and_explains(tmp_path):
    path = tmp_path / "plain.keras"
    _small_model().save(path)
    explainer = Explainer(load_model(str(path), preprocess="tf", labels=["left", "right"]))
    assert explainer.layers == ["conv"]
    assert explainer.explain(np.zeros((5, 7, 3), np.uint8), class_index="right").label == "right"


@pytest.mark.parametrize("content", [b"", b"not a model at all"])
def test_a_broken_model_file_is_refused(tmp_path, content):
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"^broken.keras is not a readable .keras file"):
        load_model(str(path))


def test_unknown_names_and_preprocessing_are_refused():
    with pytest.raises(InputError, match="Unknown model"):
        load_model("resnet9000")
    with pytest.raises(InputError, match="Unknown preprocessing"):
        load_model(_small_model(), preprocess="bgr")
