"""Vision Transformers explained like CNNs. Every map is checked against a tape reference written
here: the model re-run by hand up to the token layer (a sub-model, or the blocks called one by one),
the patch tokens laid on the grid, then the paper's formula."""

import re

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from dashboard.demo.shapes import dataset
from dashboard.engine import Explainer, load_model
from dashboard.engine.errors import InputError
from dashboard.engine.tokens import patch_grid

RNG = np.random.default_rng(7)


# -- keras.io's "Image classification with Vision Transformer", small -------------------------

class Patches(keras.layers.Layer):
    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, images):
        patches = keras.ops.image.extract_patches(images, size=self.size)
        batch, rows, columns, values = keras.ops.shape(patches)
        return keras.ops.reshape(patches, (batch, rows * columns, values))


class PatchEncoder(keras.layers.Layer):
    def __init__(self, patches, dim, **kwargs):
        super().__init__(**kwargs)
        self.patches = patches
        self.projection = keras.layers.Dense(dim)
        self.position_embedding = keras.layers.Embedding(patches, dim)

    def call(self, patch):
        positions = keras.ops.expand_dims(keras.ops.arange(0, self.patches), 0)
        return self.projection(patch) + self.position_embedding(positions)


class ClassToken(keras.layers.Layer):
    """A learned token put before the patches."""

    def build(self, shape):
        self.token = self.add_weight(shape=(1, 1, shape[-1]), initializer="random_normal")

    def call(self, x):
        token = keras.ops.broadcast_to(self.token, (keras.ops.shape(x)[0], 1, keras.ops.shape(x)[-1]))
        return keras.ops.concatenate([token, x], axis=1)


class FirstToken(keras.layers.Layer):
    def call(self, x):
        return x[:, 0]


def keras_io_vit(size=32, patch=4, dim=32, blocks=3, classes=5, class_token=False):
    inputs = keras.Input((size, size, 3))
    x = PatchEncoder((size // patch) ** 2, dim, name="patch_encoder")(Patches(patch, name="patches")(inputs))
    if class_token:
        x = ClassToken(name="class_token")(x)
    for number in range(1, blocks + 1):
        x1 = keras.layers.LayerNormalization(epsilon=1e-6, name=f"norm_{number}a")(x)
        attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=dim // 2, dropout=0.1,
                                                    name=f"attention_{number}")(x1, x1)
        x2 = keras.layers.Add(name=f"residual_{number}a")([attention, x])
        x3 = keras.layers.LayerNormalization(epsilon=1e-6, name=f"norm_{number}b")(x2)
        x3 = keras.layers.Dense(2 * dim, activation="gelu", name=f"mlp_{number}")(x3)
        x3 = keras.layers.Dropout(0.1)(x3)
        x3 = keras.layers.Dense(dim, name=f"mlp_{number}_out")(x3)
        x = keras.layers.Add(name=f"block_{number}")([x3, x2])
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = FirstToken()(x) if class_token else keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="gelu")(x)
    # The class-token model squashes with softmax: the engine must explain the score before it.
    outputs = keras.layers.Dense(classes, activation="softmax" if class_token else None, name="logits")(x)
    return keras.Model(inputs, outputs)


def _formula(tokens, gradients, prefix, grid):
    """Grad-CAM on the patch tokens, before its ReLU: sum_k alpha_k A_k with alpha the spatial mean of
    the gradient. (Random weights often leave a map all negative: the sum is compared, then the ReLU.)"""
    a = tokens[0, prefix:].reshape(*grid, -1)
    g = gradients[0, prefix:].reshape(*grid, -1)
    return (a * g.mean(axis=(0, 1))).sum(-1)


def _sub_model_reference(model, layer_name, x, class_index, grid):
    """The tape reference for a functional model: a sub-model with outputs [token layer, logits].
    The tokens past the grid's h * w patches are the prefix (the class token, once it is added)."""
    dense = model.get_layer("logits")
    sub = keras.Model(model.inputs, [model.get_layer(layer_name).output, dense.input])
    with tf.GradientTape() as tape:
        tokens, features = sub(x, training=False)
        logits = features @ dense.kernel + dense.bias  # before the softmax
        score = logits[0, class_index]
    prefix = tokens.shape[1] - grid[0] * grid[1]
    return _formula(tokens.numpy(), tape.gradient(score, tokens).numpy(), prefix, grid)


def _agree(explanation, name, reference):
    assert np.abs(reference).max() > 0, "the score does not depend on this layer: pick another"
    r = np.corrcoef(explanation.pre_relu[name].ravel(), reference.ravel())[0, 1]
    assert r >= 0.999, (name, r)
    positive = np.maximum(reference, 0)
    if (positive > 0).sum() > 1:
        r = np.corrcoef(explanation.raw[name].ravel(), positive.ravel())[0, 1]
        assert r >= 0.999, (name, r)


def _photo():
    return RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _classes(explainer, photo):
    top = explainer.predict(photo, top=2)
    return [top[0][0], top[1][0]]


@pytest.mark.parametrize("class_token", [False, True], ids=["keras.io, no class token", "class token, softmax"])
def test_a_keras_io_vit_matches_the_tape_reference(class_token):
    model = keras_io_vit(class_token=class_token)
    explainer = Explainer(model)
    assert explainer.transformer and explainer.blocks == 3
    layers = ["patch_encoder", "norm_2a", "block_2", "norm_3a"] + ([] if class_token else ["block_3"])
    assert set(layers) <= set(explainer.layers)
    assert not any("dropout" in name for name in explainer.layers)  # a copy of its input at inference
    assert explainer.describe("block_2") == "block 2 of 3 · 8×8 tokens"
    # With a head on the class token the last block's patch tokens feed nothing: its first norm is
    # the default; with a flattened head, the last layer.
    assert explainer.default_layer == ("norm_3a" if class_token else "final_norm")
    photo = _photo()
    x = explainer.model.to_input(photo)
    for class_index in _classes(explainer, photo):
        explanation = explainer.explain(photo, layers=layers, class_index=class_index)
        for name in layers:
            reference = _sub_model_reference(model, name, x, class_index, (8, 8))
            _agree(explanation, name, reference)
            assert explanation.maps[name].shape == photo.shape[:2]


def _hub_vit(pooling="token"):
    backbone = keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=2,
                                            hidden_dim=32, mlp_dim=64, name="backbone")
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=6, pooling=pooling)


def _hub_vit_reference(classifier, number, where, x, class_index):
    """keras-hub's ViTEncoder runs its blocks inside one layer: the reference calls them one by one,
    and block `number` step by step when the watched tensor is its first norm."""
    backbone = classifier.backbone
    encoder = backbone.get_layer("vit_encoder")
    with tf.GradientTape() as tape:
        h = backbone.get_layer("vit_patching_and_embedding")(x)
        for block in encoder.encoder_layers[: number - 1]:
            h = block(h)
        block = encoder.encoder_layers[number - 1]
        if where == "ln_1":
            watched = block.layer_norm_1(h)
            mid = block.mha(watched, watched) + h
            h = mid + block.mlp(block.layer_norm_2(mid))
        else:
            watched = h = block(h)
        for block in encoder.encoder_layers[number:]:
            h = block(h)
        dense = classifier.output_dense  # its kernel and bias: the score before a softmax
        logits = encoder.layer_norm(h)[:, 0] @ dense.kernel + dense.bias
        score = logits[0, class_index]
    return _formula(watched.numpy(), tape.gradient(score, watched).numpy(), 1, (8, 8))


def test_a_keras_hub_vit_offers_every_block_and_matches_the_reference():
    classifier = _hub_vit()
    explainer = Explainer(classifier, preprocess="tf")
    prefix = "backbone/vit_encoder/"
    assert explainer.blocks == 4
    assert [f"{prefix}transformer_block_{n}" for n in range(1, 4)] == \
        [name for name in explainer.layers if name.startswith(prefix) and name.count("/") == 2][:3]
    assert explainer.default_layer == f"{prefix}transformer_block_4/ln_1"
    assert explainer.describe(f"{prefix}transformer_block_2/ln_1") == "block 2 of 4 · 8×8 tokens"
    # "Through the layers" walks the blocks up to the default.
    assert explainer.conv_layers[1:] == [f"{prefix}transformer_block_{n}" for n in range(1, 4)] + \
        [f"{prefix}transformer_block_4/ln_1"]
    photo = _photo()
    x = explainer.model.to_input(photo)
    watched = [(1, "output"), (2, "ln_1"), (3, "output"), (4, "ln_1")]
    names = [f"{prefix}transformer_block_{n}" + ("/ln_1" if where == "ln_1" else "") for n, where in watched]
    for class_index in _classes(explainer, photo):
        explanation = explainer.explain(photo, layers=names, class_index=class_index)
        for name, (number, where) in zip(names, watched):
            _agree(explanation, name, _hub_vit_reference(classifier, number, where, x, class_index))


def test_the_shipped_shapes_vit_matches_the_reference():
    explainer = Explainer(load_model("shapes_vit"))
    classifier = explainer.model.network
    assert explainer.blocks == 4 and explainer.describe(explainer.default_layer) == "block 4 of 4 · 8×8 tokens"
    images, labels, _ = dataset(21, 2)
    prefix = "vi_t_backbone/vit_encoder/"
    watched = [(2, "output"), (3, "ln_1"), (4, "ln_1")]
    names = [f"{prefix}transformer_block_{n}" + ("/ln_1" if where == "ln_1" else "") for n, where in watched]
    for image, label in zip(images, labels):
        x = explainer.model.to_input(image)
        for class_index in {int(label), _classes(explainer, image)[1]}:
            explanation = explainer.explain(image, layers=names, class_index=class_index)
            for name, (number, where) in zip(names, watched):
                _agree(explanation, name, _hub_vit_reference(classifier, number, where, x, class_index))
            assert explanation.maps[names[-1]].shape == image.shape[:2]


def _hub_swin():
    backbone = keras_hub.models.SwinTransformerBackbone(image_shape=(32, 32, 3), patch_size=2, embed_dim=16,
                                                        depths=(2, 2), num_heads=(2, 2), window_size=4)
    return keras_hub.models.SwinTransformerImageClassifier(backbone=backbone, num_classes=4)


def _hub_swin_reference(classifier, stage_number, block_number, x, class_index):
    """The tokens after block `block_number` of stage `stage_number`, re-running the stages by hand."""
    backbone = classifier.backbone
    with tf.GradientTape() as tape:
        h = backbone.patch_embedding(x)
        watched = None
        for s, stage in enumerate(backbone.stages):
            for b, block in enumerate(stage.blocks):
                h = block(h)
                if (s, b) == (stage_number, block_number):
                    watched = h
            if stage.downsample is not None:
                rows, columns = stage.input_resolution
                h = stage.downsample(h, H=rows, W=columns)
        logits = classifier.output_dense(keras.ops.mean(backbone.norm(h), axis=1))
        score = logits[0, class_index]
    rows = int(np.sqrt(watched.shape[1]))
    return _formula(watched.numpy(), tape.gradient(score, watched).numpy(), 0, (rows, rows))


def test_a_keras_hub_swin_is_explained_stage_by_stage():
    classifier = _hub_swin()
    explainer = Explainer(classifier, preprocess="tf")
    blocks = [name for name in explainer.layers if re.fullmatch(r"blocks_\d+", name.split("/")[-1])]
    assert len(blocks) == 4 and explainer.blocks == 4
    assert {explainer.layer_shape(name)[:2] for name in blocks} == {(16, 16), (8, 8)}  # the stages' grids
    photo = _photo()
    x = explainer.model.to_input(photo)
    for class_index in _classes(explainer, photo):
        explanation = explainer.explain(photo, layers=blocks, class_index=class_index)
        for name, (stage, block) in zip(blocks, [(0, 0), (0, 1), (1, 0), (1, 1)]):
            _agree(explanation, name, _hub_swin_reference(classifier, stage, block, x, class_index))


def test_deit_has_two_prefix_tokens_and_defaults_to_the_last_blocks_first_norm():
    backbone = keras_hub.models.DeiTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=3, num_heads=2,
                                             hidden_dim=32, intermediate_dim=64)
    explainer = Explainer(keras_hub.models.DeiTImageClassifier(backbone=backbone, num_classes=3), preprocess="tf")
    assert explainer.blocks == 3
    assert explainer._spatial[explainer.default_layer].grid.prefix == 2  # class and distillation tokens
    assert explainer.default_layer.endswith("ln_1") and explainer.describe(explainer.default_layer).startswith("block 3 of 3")
    explanation = explainer.explain(_photo())
    assert np.abs(explanation.pre_relu[explainer.default_layer]).max() > 0  # the class score reaches it


def test_the_patch_grid_is_found_and_what_has_none_is_refused():
    assert patch_grid(197, (224, 224)).prefix == 1 and patch_grid(198, (224, 224)).prefix == 2
    assert (patch_grid(196, (224, 224)).height, patch_grid(196, (224, 224)).width) == (14, 14)
    assert (patch_grid(24, (96, 128)).height, patch_grid(24, (96, 128)).width) == (4, 6)
    assert patch_grid(100, (224, 224)) is not None and patch_grid(77, (224, 224)) is None
    # A text model's (batch, 77, dim) sequence, or a pooled vector, cannot be laid on the image.
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Reshape((77, 8))(keras.layers.Dense(77 * 8)(keras.layers.Flatten()(inputs)))
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x))
    with pytest.raises(InputError, match="patch grid"):
        Explainer(keras.Model(inputs, outputs))


def test_every_method_runs_on_a_transformer():
    from dashboard.engine.methods import METHODS

    explainer = Explainer(keras_io_vit(class_token=True))
    photo = _photo()
    for method in METHODS:
        explanation = explainer.explain(photo, method=method)
        map_ = explanation.maps[explainer.default_layer]
        assert map_.shape == photo.shape[:2] and np.isfinite(map_).all(), method


def _rollout_formula(attentions, fusion, discard, prefix):
    """Abnar & Zuidema (2020), written out: per block, heads fused, the weakest `discard` fraction of
    the off-diagonal weights zeroed (as pytorch's vit-explain does, but a token keeps itself), 0.5 A + 0.5 I with rows renormalised, multiplied from the first
    block; the class token's row (or, with no class token, the mean row) over the patches."""
    joint = None
    for attention in attentions:
        a = attention.max(axis=0) if fusion == "max" else attention.mean(axis=0)
        n = a.shape[0]
        if discard:
            values = sorted(a[i, j] for i in range(n) for j in range(n) if i != j)
            weakest_kept = values[int(discard * len(values))]  # the int(discard * count) below it are dropped
            a = np.array([[a[i, j] if i == j or a[i, j] >= weakest_kept else 0.0 for j in range(n)] for i in range(n)])
        a = 0.5 * a + 0.5 * np.eye(n)
        a = a / a.sum(axis=1, keepdims=True)
        joint = a if joint is None else a @ joint
    row = joint[0] if prefix else joint.mean(axis=0)
    return row[prefix:]


@pytest.mark.parametrize("fusion, discard", [("mean", 0.0), ("max", 0.0), ("mean", 0.9)])
def test_attention_rollout_matches_the_papers_formula(fusion, discard):
    model = keras_io_vit(class_token=True)
    explainer = Explainer(model)
    assert "rollout" in explainer.methods
    photo = _photo()
    x = explainer.model.to_input(photo)
    # Reference attention: Keras' own weights, asked of each attention layer on its norm's output.
    norms = keras.Model(model.inputs, [model.get_layer(f"norm_{n}a").output for n in (1, 2, 3)])(x)
    attentions = [model.get_layer(f"attention_{n}")(h, h, return_attention_scores=True, training=False)[1][0].numpy()
                  for n, h in zip((1, 2, 3), norms)]
    for layer, blocks in [("norm_3a", 3), ("block_2", 2)]:
        explanation = explainer.explain(photo, layers=layer, method="rollout",
                                        method_options={"fusion": fusion, "discard": discard})
        reference = _rollout_formula(attentions[:blocks], fusion, discard, prefix=1).reshape(8, 8)
        assert np.allclose(explanation.raw[layer] / explanation.raw[layer].max(), reference / reference.max(), atol=1e-4)


def test_attention_rollout_is_offered_only_where_attention_spans_all_tokens():
    assert "rollout" not in Explainer(_hub_swin(), preprocess="tf").methods  # windows, not all tokens
    vit = Explainer(_hub_vit(), preprocess="tf")
    assert "rollout" in vit.methods
    explanation = vit.explain(_photo(), method="rollout")
    assert explanation.raw[vit.default_layer].shape == (8, 8) and explanation.has_evidence(vit.default_layer)
    with pytest.raises(InputError, match="from block 1 on"):
        vit.explain(_photo(), layers="backbone/vit_patching_and_embedding", method="rollout")


def test_the_sanity_check_randomises_a_transformer_block_by_block():
    from dashboard.engine import metrics

    explainer = Explainer(_hub_vit(), preprocess="tf")
    photo = _photo()
    result = metrics.sanity(explainer, photo, explainer.default_layer)
    assert [step["block"] for step in result["cascade"]] == ["head", "block 4", "block 3", "block 2", "block 1",
                                                              "patch embedding"]
    assert result["cascade"][0]["randomised_from"] == "predictions"
    # The copy was randomised, never the model being explained.
    again = explainer.explain(photo, layers=explainer.default_layer)
    assert np.allclose(again.maps[explainer.default_layer], result["map"], atol=1e-5)
