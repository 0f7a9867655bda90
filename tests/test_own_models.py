"""Models people bring: Teachable Machine exports and other Keras 2 files, binary, multi-label and
multi-output heads, subclassed models. Each is checked against an independent reference: tf_keras
(the Keras 2 loader) for legacy files, a GradientTape pass on the model's own layers otherwise."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import references as ref
from conftest import PHOTOS, SHARED, WEIGHTS, needs_weights
from dashboard.engine import Explainer, InputError, load_model, read_photo

TEACHABLE = SHARED / "models" / "teachable_machine_water"
needs_teachable = pytest.mark.skipif(not (TEACHABLE / "keras_model.h5").is_file(), reason="no shared Teachable Machine export")


@pytest.fixture(scope="module")
def photos():
    return {name: read_photo(PHOTOS / name) for name in ("cat.bmp", "hot_dog.jpg", "bird.bmp")}


@pytest.fixture(scope="module")
def teachable_zip(tmp_path_factory):
    """The export as Teachable Machine's download gives it: converted_keras.zip."""
    path = tmp_path_factory.mktemp("tm") / "converted_keras.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(TEACHABLE / "keras_model.h5", "keras_model.h5")
        archive.write(TEACHABLE / "labels.txt", "labels.txt")
    return path


def _linear(dense, features):
    """A Dense layer without its activation (Teachable Machine's last one has no bias)."""
    logits = tf.matmul(features, dense.kernel)
    return logits if dense.bias is None else logits + dense.bias


def _tf_keras_gradcam(model, base, head_of, x, layer, class_index):
    """Grad-CAM from tf_keras: a flat probe on the nested base, then the head by hand (pre-softmax)."""
    probe = tf_keras.Model(base.inputs, [base.get_layer(layer).output, base.output])
    with tf.GradientTape() as tape:
        activations, features = probe(x, training=False)
        score = head_of(features)[0, class_index]
    gradients = tape.gradient(score, activations)
    return ref.gradcam(activations[0].numpy().astype(np.float64), gradients[0].numpy().astype(np.float64))


@needs_teachable
@pytest.mark.parametrize("source", ["zip", "h5"])
def test_teachable_machine_export_matches_tf_keras(source, teachable_zip, photos):
    model = load_model(teachable_zip if source == "zip" else TEACHABLE / "keras_model.h5")
    assert model.labels == ["5 Galoon", "500ML"]  # "0 5 Galoon" -> "5 Galoon"
    explainer = Explainer(model)
    assert explainer.default_layer.endswith("model1/out_relu")
    assert any(name.endswith("block_13_expand_relu") for name in explainer.layers)

    reference = tf_keras.models.load_model(TEACHABLE / "keras_model.h5", compile=False)
    features_block, head_block = reference.layers
    base, pooling = features_block.layers
    hidden, last = head_block.layers
    logits = lambda features: _linear(last, hidden(pooling(features)))  # noqa: E731

    for name, photo in photos.items():
        x = model.to_input(photo)
        assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5  # Teachable Machine's -1..1, chosen for us
        theirs = reference(x, training=False).numpy()[0]
        ours = {index: p for index, _, p in explainer.predict(photo)}
        np.testing.assert_allclose([ours[0], ours[1]], theirs, atol=1e-4)
        for layer in ("out_relu", "block_13_expand_relu"):
            e = explainer.explain(photo, layers=layer)
            assert e.class_index == int(np.argmax(theirs))
            expected = _tf_keras_gradcam(reference, base, logits, x, layer, e.class_index)
            assert expected.max() > 0
            r = ref.correlation(next(iter(e.raw.values())), expected)
            assert r >= 0.999, f"{name} {layer}: r = {r:.5f}"


def _legacy_sequential_cnn():
    tf_keras.utils.set_random_seed(3)
    return tf_keras.Sequential([
        tf_keras.layers.Conv2D(8, 3, activation="relu", input_shape=(48, 48, 3), name="conv_a"),
        tf_keras.layers.BatchNormalization(),
        tf_keras.layers.MaxPooling2D(),
        tf_keras.layers.Conv2D(16, 3, padding="same", name="conv_b"),
        tf_keras.layers.ReLU(name="conv_b_relu"),
        tf_keras.layers.Dropout(0.2),
        tf_keras.layers.GlobalAveragePooling2D(),
        tf_keras.layers.Dense(3, activation="softmax", name="classes"),
    ])


def _legacy_nested_transfer_model():
    tf_keras.utils.set_random_seed(4)  # the base has ImageNet weights (the offline cache), the head is new
    base = tf_keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
    base.load_weights(WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
    base.trainable = False
    inputs = tf_keras.Input((224, 224, 3))
    x = base(inputs, training=False)
    x = tf_keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf_keras.layers.Dense(4, activation="softmax", name="classes")(x)
    return tf_keras.Model(inputs, outputs)


@pytest.mark.parametrize("build, layer", [
    (_legacy_sequential_cnn, "conv_b_relu"),
    pytest.param(_legacy_nested_transfer_model, "block_13_expand_relu", marks=needs_weights),
])
def test_other_keras_2_files_load_and_match_tf_keras(build, layer, tmp_path, photos):
    reference = build()
    path = tmp_path / "legacy.h5"
    reference.save(path)  # tf_keras writes the Keras 2 HDF5 format
    explainer = Explainer(load_model(path, preprocess="tf"))
    x = explainer.model.to_input(photos["cat.bmp"])
    theirs = reference(x, training=False).numpy()[0]
    ours = np.zeros_like(theirs)
    for index, _, p in explainer.predict(photos["cat.bmp"], top=len(theirs)):
        ours[index] = p
    np.testing.assert_allclose(ours, theirs, atol=1e-4)

    base = next((l for l in reference.layers if isinstance(l, tf_keras.Model)), reference)
    head = reference.get_layer("classes")
    if base is reference:  # flat: the probe's second output is the pooled features
        pooled = reference.layers[-2]
        probe_base = tf_keras.Model(reference.inputs, pooled.output)
        logits = lambda features: _linear(head, features)  # noqa: E731
        expected = _tf_keras_gradcam(reference, probe_base, logits, x, layer, int(np.argmax(theirs)))
    else:
        pooling = reference.layers[-2]
        logits = lambda features: _linear(head, pooling(features))  # noqa: E731
        expected = _tf_keras_gradcam(reference, base, logits, x, layer, int(np.argmax(theirs)))
    e = explainer.explain(photos["cat.bmp"], layers=layer)
    assert e.class_index == int(np.argmax(theirs))
    r = ref.correlation(next(iter(e.raw.values())), expected)
    assert r >= 0.999, f"r = {r:.5f}"


def test_a_keras_2_file_with_a_lambda_or_custom_layer_is_refused(tmp_path):
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.Lambda(lambda t: t * 2)(inputs)
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(2, 3)(x))
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x)).save(tmp_path / "lambda.h5")
    with pytest.raises(InputError, match="lambda.h5 was refused: it contains a Lambda layer"):
        load_model(tmp_path / "lambda.h5")

    class Doubler(tf_keras.layers.Layer):
        def call(self, t):
            return t * 2

    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(2, 3)(Doubler()(inputs)))
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x)).save(tmp_path / "custom.h5")
    with pytest.raises(InputError, match="custom.h5 was refused: it needs custom code.*'Doubler'"):
        load_model(tmp_path / "custom.h5")


def test_damaged_model_files_get_one_sentence(tmp_path, teachable_zip):
    (tmp_path / "broken.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match=r"^broken.h5 is not a readable HDF5 model file"):
        load_model(tmp_path / "broken.h5")
    (tmp_path / "broken.zip").write_bytes(b"PK not a zip")
    with pytest.raises(InputError, match=r"^broken.zip is not a readable zip file"):
        load_model(tmp_path / "broken.zip")


# Binary, multi-label and multi-output heads, on small Keras 3 models with a conv layer to explain.

def _trunk(inputs):
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    return x, keras.layers.GlobalAveragePooling2D()(x)


def _tape_map(model, layer, logit_layer, x, score):
    """A flat reference: activations and the head's pre-activation from the model's own layers."""
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, model.get_layer(logit_layer).input])
    dense = model.get_layer(logit_layer)
    with tf.GradientTape() as tape:
        activations, features = probe(x, training=False)
        logits = tf.matmul(features, dense.kernel) + dense.bias
        target = score(logits[0])
    gradients = tape.gradient(target, activations)
    return ref.gradcam(activations[0].numpy().astype(np.float64), gradients[0].numpy().astype(np.float64)), logits[0].numpy()


@pytest.mark.parametrize("activation", [None, "sigmoid"])
def test_a_single_unit_head_has_two_sides(activation, photos):
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 3))
    x, pooled = _trunk(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation=activation, name="out")(pooled))
    photo = photos["cat.bmp"]
    explainer = Explainer(model, preprocess="tf")
    assert explainer.labels == ["negative", "positive"]
    x_in = explainer.model.to_input(photo)

    for bias in (-5.0, 5.0):  # the model predicts the negative, then the positive side
        model.get_layer("out").bias.assign([bias])
        explainer = Explainer(model, preprocess="tf", labels=["cat", "dog"])
        predicted = 1 if bias > 0 else 0
        probabilities = dict((i, p) for i, _, p in explainer.predict(photo))
        _, logits = _tape_map(model, "conv", "out", x_in, lambda z: z[0])
        z = float(logits[0])
        assert probabilities[1] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-5)
        assert probabilities[0] + probabilities[1] == pytest.approx(1, abs=1e-6)
        assert explainer.predict(photo)[0][1] == ["cat", "dog"][predicted]
        e = explainer.explain(photo)
        assert e.class_index == predicted and e.label == ["cat", "dog"][predicted]
        for side, score in ((1, lambda z: z[0]), (0, lambda z: -z[0])):
            expected, _ = _tape_map(model, "conv", "out", x_in, score)
            ours = explainer.explain(photo, class_index=side).raw["conv"]
            if expected.max() == 0:
                assert ours.max() == 0
            else:
                assert ref.correlation(ours, expected) >= 0.999
        weights = explainer.explain(photo, class_index=0, method="scorecam").weights["conv"]
        assert weights.std() > 0 and weights.max() < 1  # probabilities of masked inputs, not a softmax over one value


def test_labels_for_a_binary_model_come_from_a_file_and_are_counted(tmp_path):
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(_trunk(inputs)[1]))
    (tmp_path / "labels.txt").write_text("0 Cat\n1 Dog\n")
    assert load_model(model, labels=tmp_path / "labels.txt").labels == ["Cat", "Dog"]
    with pytest.raises(InputError, match=r"^The model has 2 classes \(one output unit.*but 3 labels were given\.$"):
        load_model(model, labels=["a", "b", "c"])
    three = keras.Model(inputs, keras.layers.Dense(1)(_trunk(inputs)[1]))
    with pytest.raises(InputError, match="but 1 label was given"):
        load_model(three, labels=["only"])


def test_multi_label_heads_give_each_class_its_own_sigmoid(photos):
    keras.utils.set_random_seed(8)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Dense(5, activation="sigmoid", name="out")(_trunk(inputs)[1]))
    explainer = Explainer(model, preprocess="tf")
    photo = photos["hot_dog.jpg"]
    x = explainer.model.to_input(photo)
    _, logits = _tape_map(model, "conv", "out", x, lambda z: z[0])
    expected = 1 / (1 + np.exp(-logits))
    predictions = explainer.predict(photo, top=5)
    assert [i for i, _, _ in predictions] == list(np.argsort(-expected))
    np.testing.assert_allclose([p for _, _, p in predictions], np.sort(expected)[::-1], atol=1e-5)
    assert abs(sum(p for _, _, p in predictions) - 1) > 0.05  # not a softmax
    for k in range(5):
        reference, _ = _tape_map(model, "conv", "out", x, lambda z, k=k: z[k])
        if reference.max() > 0:
            assert ref.correlation(explainer.explain(photo, class_index=k).raw["conv"], reference) >= 0.999


def _two_output_model():
    keras.utils.set_random_seed(9)
    inputs = keras.Input((32, 32, 3))
    _, pooled = _trunk(inputs)
    box = keras.layers.Dense(4, name="box")(pooled)
    classes = keras.layers.Dense(3, activation="softmax", name="classes")(pooled)
    return keras.Model(inputs, [box, classes])


def test_multi_output_models_explain_the_chosen_output(photos):
    model = _two_output_model()
    photo = photos["bird.bmp"]
    default = Explainer(model, preprocess="tf")
    assert default.model.head.layer.name == "classes" and default.labels == ["0", "1", "2"]
    x = default.model.to_input(photo)
    probabilities = model(x, training=False)[1].numpy()[0]
    np.testing.assert_allclose(sorted(p for _, _, p in default.predict(photo)), sorted(probabilities), atol=1e-5)
    e = default.explain(photo)
    expected, _ = _tape_map(model, "conv", "classes", x, lambda z: z[int(np.argmax(probabilities))])
    assert ref.correlation(e.raw["conv"], expected) >= 0.999

    box = Explainer(model, preprocess="tf", output="box")
    assert box.model.head.layer.name == "box" and len(box.labels) == 4
    assert Explainer(model, preprocess="tf", output=0).model.head.layer.name == "box"
    with pytest.raises(InputError, match="no output named 'boxes': use one of box, classes"):
        Explainer(model, output="boxes")
    with pytest.raises(InputError, match="Output 5 does not exist: the model has 2 outputs"):
        Explainer(model, output=5)


def test_outputs_that_are_not_class_scores_get_one_sentence():
    inputs = keras.Input((32, 32, 3))
    segmentation = keras.layers.Conv2D(2, 1, name="mask")(keras.layers.Conv2D(4, 3, padding="same")(inputs))
    with pytest.raises(InputError, match=r"None of the model's outputs \(\(None, 32, 32, 2\)\) can be read as class scores"):
        load_model(keras.Model(inputs, segmentation))


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed_net")
        self.conv = keras.layers.Conv2D(6, 3, activation="relu", name="features")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.classify = keras.layers.Dense(3, activation="softmax", name="classify")

    def call(self, x):
        return self.classify(self.pool(self.conv(x)))


def test_subclassed_models_are_explained_at_the_size_given(photos):
    keras.utils.set_random_seed(10)
    net = _Subclassed()
    with pytest.raises(InputError, match="subclassed_net has no known input shape.*input_shape=.*functional model"):
        load_model(net)
    explainer = Explainer(load_model(net, preprocess="tf", input_shape=(40, 40, 3)))
    assert explainer.layers == ["features"]
    photo = photos["cat.bmp"]
    x = explainer.model.to_input(photo)
    assert x.shape == (1, 40, 40, 3)
    with tf.GradientTape() as tape:
        activations = net.conv(x)
        logits = tf.matmul(net.pool(activations), net.classify.kernel) + net.classify.bias
        top = int(np.argmax(logits[0]))
        score = logits[0, top]
    expected = ref.gradcam(activations[0].numpy(), tape.gradient(score, activations)[0].numpy())
    e = explainer.explain(photo)
    assert e.class_index == top
    assert ref.correlation(e.raw["features"], expected) >= 0.999
    probabilities = tf.nn.softmax(logits[0]).numpy()
    assert explainer.predict(photo)[0][2] == pytest.approx(probabilities.max(), abs=1e-5)


def test_a_subclassed_model_that_cannot_take_the_size_says_what_to_do():
    class NeedsSixtyFour(keras.Model):
        def __init__(self):
            super().__init__(name="fixed_net")
            self.conv = keras.layers.Conv2D(2, 3)
            self.flat = keras.layers.Flatten()
            self.dense = keras.layers.Dense(2)
            self.dense.build((None, 62 * 62 * 2))

        def call(self, x):
            return self.dense(self.flat(self.conv(x)))

    with pytest.raises(InputError, match=r"fixed_net could not be called on a \(32, 32, 3\) input .*functional model"):
        load_model(NeedsSixtyFour(), input_shape=(32, 32, 3))


# The command line, end to end.

def _cli(args, capfd):
    from dashboard.cli import main

    status = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return status, out, err


@needs_teachable
def test_cli_explains_a_teachable_machine_zip_with_its_labels(teachable_zip, tmp_path, capfd):
    status, out, err = _cli(["-i", PHOTOS / "cat.bmp", "--model", teachable_zip, "--json", "-o", tmp_path / "f.png"], capfd)
    assert status == 0, err
    report = json.loads(out)
    assert [p["label"] for p in report["predictions"]] == ["5 Galoon", "500ML"]
    assert report["label"] == "5 Galoon" and report["layers"] == ["sequential_1/model1/out_relu"]
    assert (tmp_path / "f.png").stat().st_size > 10_000

    (tmp_path / "names.txt").write_text("big bottle\nsmall bottle\n")
    status, out, _ = _cli(["-i", PHOTOS / "cat.bmp", "--model", teachable_zip, "--labels", tmp_path / "names.txt",
                           "--class", "small bottle"], capfd)
    assert status == 0 and "explained: small bottle (1)" in out

    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    status, _, err = _cli(["-i", PHOTOS / "cat.bmp", "--model", teachable_zip, "--labels", tmp_path / "three.txt"], capfd)
    assert status == 2 and err.strip() == "error: The model has 2 classes but 3 labels were given."


def test_cli_shows_both_sides_of_a_binary_model_and_picks_an_output(tmp_path, capfd):
    inputs = keras.Input((32, 32, 3))
    _, pooled = _trunk(inputs)
    keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled)).save(tmp_path / "binary.keras")
    status, out, err = _cli(["-i", PHOTOS / "cat.bmp", "--model", tmp_path / "binary.keras"], capfd)
    assert status == 0, err
    assert "negative (0)" in out and "positive (1)" in out

    _two_output_model().save(tmp_path / "two.keras")
    status, out, err = _cli(["-i", PHOTOS / "cat.bmp", "--model", tmp_path / "two.keras", "--output-name", "box", "--json"], capfd)
    assert status == 0 and json.loads(out)["head"] == {"output": "box", "kind": "multi-class"}
    status, _, err = _cli(["-i", PHOTOS / "cat.bmp", "--model", tmp_path / "two.keras", "--output-name", "boxes"], capfd)
    assert status == 2 and err.count("\n") == 1 and "no output named 'boxes'" in err
