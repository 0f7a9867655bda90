"""The classifier head: which output is explained, and how its call yields class scores.

Grad-CAM differentiates the score *before* softmax/sigmoid. The head is the layer whose call
gives that score: a Dense with a squashing activation is recomputed as x @ W + b, a final
Softmax/Activation layer gives its input, anything else is taken as already linear.
A single output unit is a two-class model, as in Keras: class 1 is the positive side
(score z), class 0 the negative side (score -z).
"""

from dataclasses import dataclass

import keras
import tensorflow as tf

from .errors import InputError, plural, whole_number

_SQUASHING = ("softmax", "sigmoid")


@dataclass(frozen=True)
class Head:
    layer: keras.layers.Layer  # the layer whose call is recorded
    read: str  # "dense": recompute x @ W + b; "input": the call's input; "output": the call's output
    squashing: str | None  # "softmax", "sigmoid" or None when the output is already logits
    units: int  # the output's width; 1 for a binary head

    @property
    def classes(self) -> int:
        return 2 if self.units == 1 else self.units

    @property
    def kind(self) -> str:
        if self.units == 1:
            return "binary"
        return "multi-label" if self.squashing == "sigmoid" else "multi-class"

    def logits(self, args, output):
        """The head layer's call (its positional args and its output) -> its scores before squashing."""
        if self.read == "dense":
            logits = tf.matmul(args[0], self.layer.kernel)
            return logits + self.layer.bias if self.layer.use_bias else logits
        return args[0] if self.read == "input" else output

    def scores(self, logits):
        """(batch, units) logits -> (batch, classes) class scores; a binary head gives [-z, z]."""
        logits = tf.reshape(logits, (tf.shape(logits)[0], self.units))
        return tf.concat([-logits, logits], axis=1) if self.units == 1 else logits

    def probabilities(self, scores):
        """Class scores -> probabilities: softmax for one class out of many, else one sigmoid per class
        (for a binary head sigmoid(-z) + sigmoid(z) = 1)."""
        return tf.nn.softmax(scores) if self.kind == "multi-class" else tf.nn.sigmoid(scores)


def find_head(network: keras.Model, output=None, called=None) -> Head:
    """The head of output `output` (name or index; default the first classification output).

    `called` lists (layer, output shape) in call order for models without a graph (subclassed);
    their head is the last layer called."""
    if called is not None:
        layer, shape = called[-1]
        return _head_of(layer, shape)
    candidates = [(_producer(tensor), tuple(tensor.shape)) for tensor in network.outputs]
    names = output_names(network)
    if output is None:
        readable = [c for c in candidates if len(c[1]) == 2]
        if not readable:
            shapes = ", ".join(str(shape) for _, shape in candidates)
            raise InputError(f"None of the model's outputs ({shapes}) can be read as class scores: "
                             "a classifier ends in a (batch, classes) output.")
        squashed = [c for c in readable if _activation(c[0]) in _SQUASHING]
        return _head_of(*(squashed or readable)[0])
    index = output if isinstance(output, int) else whole_number(output)
    if index is not None:
        if not 0 <= index < len(candidates):
            raise InputError(f"Output {index} does not exist: the model has {plural(len(names), 'output')} ({', '.join(names)}).")
    elif output in names:
        index = names.index(output)
    else:
        raise InputError(f"The model has no output named '{output}': use one of {', '.join(names)}.")
    layer, shape = candidates[index]
    if len(shape) != 2:
        raise InputError(f"Output '{names[index]}' has shape {shape}, which cannot be read as class scores "
                         "(a (batch, classes) output is needed).")
    return _head_of(layer, shape)


def output_names(network: keras.Model) -> list[str]:
    """The names of the model's outputs (the layers that produce them); none for subclassed models."""
    return [_producer(tensor).name for tensor in getattr(network, "outputs", None) or []]


def _head_of(layer, shape) -> Head:
    units = int(shape[-1])
    activation = _activation(layer)
    if isinstance(layer, keras.layers.Softmax):
        return Head(layer, "input", "softmax", units)
    if isinstance(layer, keras.layers.Activation) and activation in _SQUASHING:
        return Head(layer, "input", activation, units)
    if isinstance(layer, keras.layers.Dense) and activation in _SQUASHING:
        return Head(layer, "dense", activation, units)
    return Head(layer, "output", None, units)


def _producer(tensor):
    """The innermost layer that produced a model output (nested models are looked into)."""
    layer = tensor._keras_history.operation
    while isinstance(layer, keras.Model):
        inner = getattr(layer, "outputs", None)
        layer = inner[0]._keras_history.operation if inner else layer.layers[-1]
    return layer


def _activation(layer):
    return getattr(getattr(layer, "activation", None), "__name__", None)
