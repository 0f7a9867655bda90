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

from .tokens import Grid, aspect_matches, patch_grid

# Streamlit serves sessions from threads that share models; a trace patches layer calls,
# so no two traces may overlap.
_TRACE_LOCK = threading.RLock()
_LOGITS = "__logits__"


@dataclass(frozen=True)
class SpatialLayer:
    name: str  # unique: nested layers are "outer_model/layer"
    layer: keras.layers.Layer
    shape: tuple  # (h, w, channels)
    grid: Grid | None = None  # for a token layer: how its tokens lie on the patch grid
    block: int = 0  # for a transformer: the block the layer belongs to (0: before the first)


def spatial_layers(model: keras.Model, input_shape: tuple, prefix: str = "") -> list[SpatialLayer]:
    """Every layer with a (batch, h, w, c) output and h, w > 1, in graph order, nested models included;
    for a transformer, every layer whose tokens lie on the patch grid (see `token_layers`)."""
    if not prefix and _has_token_layers(model, input_shape[:2]):
        return token_layers(model, input_shape)
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


def _has_token_layers(model: keras.Model, input_size: tuple) -> bool:
    """A layer of the graph (nested models included) gives (batch, tokens, dim) on the patch grid.
    Models without a graph are asked by a call."""
    if not getattr(model, "outputs", None):
        return any(len(shape) == 3 and shape[1] and patch_grid(shape[1], input_size)
                   for _, _, shape in named_calls(model, (*input_size, 3)))
    for layer in model.layers:
        if isinstance(layer, keras.Model) and _has_token_layers(layer, input_size):
            return True
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if len(shape) == 3 and shape[1] and patch_grid(shape[1], input_size):
            return True
    return False


def token_layers(model: keras.Model, input_shape: tuple) -> list[SpatialLayer]:
    """A transformer's candidate layers, found by watching one call on zeros, since keras-hub runs
    all its blocks inside one layer: every layer (composite ones too, named by their path) whose
    output is batch 1 and either tokens on the patch grid or an (h, w, c) map with the input's
    aspect ratio (a patch embedding's convolution), in the order the outputs are made. What is an
    identity at inference (Dropout, DropPath, Identity) and a layer that hands on an earlier output
    unchanged (an encoder ending in its norm) are skipped: they would repeat a map.

    Blocks: each attention layer opens a block at the LayerNorm called just before it (pre-norm
    transformers normalise, then attend); a layer belongs to the last block opened before its
    output was made."""
    calls = traced_calls(model, input_shape)
    starts, seen, found = _block_starts(calls), set(), []
    for call in calls:  # output order
        output, kind = call.output, type(call.layer).__name__
        repeated = id(output) in seen
        seen.add(id(output))
        if repeated or "Drop" in kind or kind == "Identity" or output.shape[0] != 1:
            continue
        shape, grid = tuple(output.shape[1:]), None
        if len(shape) == 2:
            grid = patch_grid(shape[0], input_shape[:2])
            if grid is None:
                continue
            shape = (grid.height, grid.width, shape[1])
        elif not (len(shape) == 3 and aspect_matches(shape[:2], input_shape[:2])):
            continue
        block = sum(start < call.ended for start in starts)
        found.append(SpatialLayer(call.path, call.layer, shape, grid, block))
    return found


def _block_starts(calls) -> list[int]:
    """When each block opens: at the LayerNorm called just before each attention layer."""
    starts, last_norm = [], None
    for call in sorted(calls, key=lambda c: c.started):
        kind = type(call.layer).__name__
        if kind == "LayerNormalization":
            last_norm = call.started
        elif "Attention" in kind:
            starts.append(last_norm if last_norm is not None else call.started)
            last_norm = None
    return starts


def weights_by_block(model: keras.Model, input_shape: tuple) -> list[tuple[str, str, list]]:
    """A transformer's trainable variables grouped as (group, last layer, variables), top first: the
    head (what runs after the last token layer), then each block, then the patch embedding. Each
    variable counts once, with the layer that creates it (a class token belongs to its embedding)."""
    calls = traced_calls(model, input_shape)
    starts = _block_starts(calls)
    last_tokens = max((c.ended for c in calls if len(c.output.shape) == 3 and c.output.shape[0] == 1
                       and patch_grid(c.output.shape[1], input_shape[:2])), default=0)
    groups, seen = {}, set()
    for call in calls:
        own = [v for v in call.layer._trainable_variables if id(v) not in seen]
        if not own:
            continue
        seen.update(id(v) for v in own)
        block = sum(start < call.ended for start in starts)
        name = "head" if call.started > last_tokens else f"block {block}" if block else "patch embedding"
        entry = groups.setdefault(name, [name, call.path.split("/")[-1], []])
        entry[1], entry[2] = call.path.split("/")[-1], entry[2] + own
    order = ["head", *(f"block {n}" for n in range(len(starts), 0, -1)), "patch embedding"]
    return [tuple(groups[name]) for name in order if name in groups]


@dataclass(frozen=True)
class Call:
    path: str  # the layer's name under the layers that called it: "backbone/encoder/block_1/ln_1"
    layer: keras.layers.Layer
    output: object
    started: int  # when the call began and ended, on one counter
    ended: int


def traced_calls(model: keras.Model, input_shape: tuple) -> list[Call]:
    """Every layer call (composite layers too) of one call on zeros, in the order their outputs are made."""
    layers = list(model._flatten_layers(include_self=False))
    calls, stack, clock = [], [], [0]

    def watcher(layer, original):
        def call(*args, **kwargs):
            stack.append(layer.name)
            started = clock[0] = clock[0] + 1
            try:
                output = original(*args, **kwargs)
            finally:
                path = "/".join(stack)
                stack.pop()
            clock[0] += 1
            if tf.is_tensor(output) or isinstance(output, np.ndarray):
                calls.append(Call(path, layer, output, started, clock[0]))
            return output
        return call

    with _TRACE_LOCK:
        for layer in layers:
            object.__setattr__(layer, "call", watcher(layer, layer.call))
        try:
            model(np.zeros((1, *input_shape), np.float32), training=False)
        finally:
            for layer in layers:
                if "call" in layer.__dict__:
                    object.__delattr__(layer, "call")
    return calls


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


def compile_pass(model: keras.Model, head, targets: dict, input_shape: tuple, grids: dict | None = None):
    """One forward and one backward pass for all `targets` (name -> layer), traced once.

    The returned function takes (x, class_index) and gives (class scores, class, activations,
    gradients); a negative class_index means the top class. A token layer (a name in `grids`)
    gives its patch tokens on the grid, (1, h, w, dim), and their gradients likewise.
    """
    names = list(targets)
    grids = grids or {}

    @tf.function(
        input_signature=[
            tf.TensorSpec((1, *input_shape), tf.float32),
            tf.TensorSpec((), tf.int32),
        ]
    )
    def step(x, class_index):
        with _recording(targets, head) as records:
            # Only the input is watched: frozen bases still get gradients, and no gradient is kept
            # for the weights (watching them doubled a ViT's pass).
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
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
        on_grid = [grids[name].of if name in grids else tf.identity for name in names]
        return logits, target, [f(a) for f, a in zip(on_grid, activations)], [f(g) for f, g in zip(on_grid, gradients)]

    with _TRACE_LOCK:
        return step.get_concrete_function()


def attention_layers(model: keras.Model, input_shape: tuple) -> list:
    """The model's MultiHeadAttention layers in the order a call runs them: block 1 first."""
    calls = sorted(traced_calls(model, input_shape), key=lambda c: c.started)
    return [c.layer for c in calls if isinstance(c.layer, keras.layers.MultiHeadAttention)]


def compile_attention(model: keras.Model, layers: list, input_shape: tuple):
    """Each attention layer's weights (heads, T, S) for an input, recomputed from its query and key
    projections as Keras computes them without a mask: softmax(q k^T / sqrt(key_dim)). (Keras'
    fused attention kernel never materialises them, so they cannot simply be recorded.)"""
    targets = {}
    for number, layer in enumerate(layers):
        targets[f"{number}/query"], targets[f"{number}/key"] = layer._query_dense, layer._key_dense

    @tf.function(input_signature=[tf.TensorSpec((1, *input_shape), tf.float32)])
    def attention(x):
        with _recording(targets) as records:
            model(x, training=False)
            weights = []
            for number, layer in enumerate(layers):
                query, key = records[f"{number}/query"], records[f"{number}/key"]
                scores = tf.einsum("btnh,bsnh->bnts", query, key) / float(np.sqrt(layer._key_dim))
                weights.append(tf.nn.softmax(scores, axis=-1)[0])
            return weights

    with _TRACE_LOCK:
        return attention.get_concrete_function()


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
