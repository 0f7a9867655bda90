"""The shared machinery: which layers can be explained, and one compiled pass that
records their activations and the gradients of the class score (before softmax).

Keras cannot build `keras.Model(inputs, inner_layer.output)` across a nested model
("Graph disconnected"). Instead, while a step is traced, the `call` of each target
layer (and of the classifier head) is wrapped so its output is recorded inside the
GradientTape; the model runs as it is, and the calls are restored right after. Once
traced, the compiled step needs no patching.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

# Streamlit serves sessions from threads that share models; a trace patches layer calls,
# so no two traces may overlap.
_TRACE_LOCK = threading.RLock()
_LOGITS = "__logits__"


@dataclass(frozen=True)
class SpatialLayer:
    name: str  # unique: nested layers are "outer_model/layer"
    layer: keras.layers.Layer
    shape: tuple  # (h, w, channels)


def spatial_layers(model: keras.Model, input_shape: tuple, prefix: str = "") -> list[SpatialLayer]:
    """Every layer with a (batch, h, w, c) output and h, w > 1, in graph order, nested models included."""
    if not getattr(model, "outputs", None):  # subclassed: no graph to read, so watch a call
        return [SpatialLayer(name, layer, tuple(shape[1:])) for name, layer, shape in named_calls(model, input_shape)
                if _spatial(shape)]
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += spatial_layers(layer, input_shape, f"{prefix}{layer.name}/")
            continue
        if isinstance(layer, keras.layers.InputLayer) or "preprocessing" in type(layer).__module__:
            continue
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):  # a layer shared between several calls
            continue
        if _spatial(shape):
            found.append(SpatialLayer(prefix + layer.name, layer, shape[1:]))
    return found


def _spatial(shape) -> bool:
    return len(shape) == 4 and (shape[1] or 2) > 1 and (shape[2] or 2) > 1


def called_layers(model: keras.Model, input_shape: tuple) -> list[tuple]:
    """(layer, output shape) for each innermost layer, in the order a call on zeros runs them."""
    return [(layer, shape) for _, layer, shape in named_calls(model, input_shape)]


def named_calls(model: keras.Model, input_shape: tuple) -> list[tuple]:
    """(name, layer, output shape) in call order."""
    leaves = {id(layer): layer for layer in model._flatten_layers(include_self=False)
              if not list(layer._flatten_layers(include_self=False))}
    with _TRACE_LOCK, _recording(leaves) as records:
        model(np.zeros((1, *input_shape), np.float32), training=False)
    return [(leaves[key].name, leaves[key], tuple(output.shape)) for key, output in records.items()]


@contextmanager
def _recording(targets: dict, head=None):
    """Wrap the `call` of each target (key -> layer) and of the head so what they give lands in
    `records` (the head's scores under _LOGITS); restore the calls after."""
    records = {}

    def recorder(key, layer, take):
        original = layer.call

        def call(*args, **kwargs):
            output = original(*args, **kwargs)
            records[key] = take(args, output)
            return output

        return call

    patched = [(layer, recorder(key, layer, lambda args, output: output)) for key, layer in targets.items()]
    if head is not None:
        patched.append((head.layer, recorder(_LOGITS, head.layer, head.logits)))
    for layer, call in patched:
        object.__setattr__(layer, "call", call)
    try:
        yield records
    finally:
        for layer, _ in patched:
            if "call" in layer.__dict__:
                object.__delattr__(layer, "call")


def compile_pass(model: keras.Model, head, targets: dict, input_shape: tuple):
    """One forward and one backward pass for all `targets` (name -> layer), traced once.

    The returned function takes (x, class_index) and gives (class scores, class, activations,
    gradients); a negative class_index means the top class.
    """
    names = list(targets)

    @tf.function(
        input_signature=[
            tf.TensorSpec((1, *input_shape), tf.float32),
            tf.TensorSpec((), tf.int32),
        ]
    )
    def step(x, class_index):
        with _recording(targets, head) as records:
            with tf.GradientTape() as tape:
                tape.watch(x)  # frozen (non-trainable) bases still get gradients
                model(x, training=False)
                missing = [name for name in names if name not in records]
                if missing:
                    raise ValueError(f"Layers {missing} were not called by the model.")
                logits = head.scores(records[_LOGITS])[0]
                top = tf.cast(tf.argmax(logits), tf.int32)
                target = tf.where(class_index < 0, top, class_index)
                score = tf.gather(logits, target)
                activations = [records[name] for name in names]
            gradients = tape.gradient(score, activations)
        gradients = [tf.zeros_like(a) if g is None else g for a, g in zip(activations, gradients)]
        return logits, target, activations, gradients

    with _TRACE_LOCK:
        return step.get_concrete_function()


def compile_probabilities(model: keras.Model, head, input_shape: tuple):
    """Class probabilities for a batch of inputs, from the head's scores (see Head.probabilities)."""

    @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
    def probabilities(x):
        with _recording({}, head) as records:
            model(x, training=False)
            return head.probabilities(head.scores(records[_LOGITS]))

    with _TRACE_LOCK:
        return probabilities.get_concrete_function()


def compile_masked_probability(probabilities, input_shape: tuple):
    """Score-CAM's probe: each map, upsampled (half-pixel bilinear) and min-max scaled to 0..1,
    masks the input; returns the class probability on each masked input (0 for a constant map)."""

    @tf.function(
        input_signature=[
            tf.TensorSpec((1, *input_shape), tf.float32),
            tf.TensorSpec((None, None, None), tf.float32),  # (n, h, w) activation maps
            tf.TensorSpec((), tf.int32),
        ]
    )
    def masked_probability(x, maps, class_index):
        masks = tf.image.resize(maps[..., None], input_shape[:2], method="bilinear")
        low = tf.reduce_min(masks, axis=(1, 2, 3), keepdims=True)
        high = tf.reduce_max(masks, axis=(1, 2, 3), keepdims=True)
        flat = high <= low
        masks = (masks - low) / tf.where(flat, 1.0, high - low)
        scores = tf.gather(probabilities(x * masks), class_index, axis=1)
        return tf.where(tf.reshape(flat, (-1,)), 0.0, scores)

    with _TRACE_LOCK:
        return masked_probability.get_concrete_function()


def compile_ordered_probability(probabilities, input_shape: tuple):
    """Deletion and insertion's probe: for each count n, the input whose n first pixels in `rank`
    order come from `first` and the rest from `second`; returns the class probability on each.
    Mixing in the graph spares building the inputs in NumPy. Frozen (see `frozen`)."""

    image = tf.TensorSpec(input_shape, tf.float32)

    @tf.function(
        input_signature=[
            image,
            image,
            tf.TensorSpec(input_shape[:2], tf.int32),  # each pixel's place in the order, 0 first
            tf.TensorSpec((None,), tf.int32),  # how many pixels `first` gives, one input per count
            tf.TensorSpec((), tf.int32),
        ]
    )
    def ordered_probability(first, second, rank, counts, class_index):
        taken = rank[None, :, :, None] < counts[:, None, None, None]
        return tf.gather(probabilities(tf.where(taken, first, second)), class_index, axis=1)

    with _TRACE_LOCK:
        return frozen(ordered_probability.get_concrete_function())


def frozen(function):
    """The compiled function with the weights copied in as constants. TensorFlow can then fold each
    batch norm into its convolution and fuse bias and activation: measured 1.5x faster on
    MobileNetV2 (bench/engine.py). The price: the weights are read once (a later change is not
    seen) and held twice in memory, so only the batch probes use it."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(function)


def upsample(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (half-pixel centres) from layer resolution to (height, width)."""
    return tf.image.resize(raw[None, ..., None], size, method="bilinear")[0, ..., 0].numpy()
