"""Explainer: photo -> one compiled pass -> per-layer weights (the method) -> maps."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from . import graph
from .errors import InputError, plural, whole_number
from .images import read_photo
from .methods import METHODS, Evidence
from .models import Model, load_model

_EPSILON = 1e-7


@dataclass
class Explanation:
    class_index: int
    label: str
    method: str
    counterfactual: bool
    maps: dict = field(default_factory=dict)  # layer -> float32 (H, W) in [0, 1], the photo's size
    raw: dict = field(default_factory=dict)  # layer -> float32 (h, w), after ReLU, unscaled
    pre_relu: dict = field(default_factory=dict)  # layer -> float32 (h, w), the weighted sum before ReLU
    weights: dict = field(default_factory=dict)  # layer -> the method's weights, (c,) or (h, w, c)
    activations: dict = field(default_factory=dict)  # layer -> (h, w, c), only with keep_activations=True
    timings: dict = field(default_factory=dict)  # seconds: "pass", "weights", "maps", "total"

    def has_evidence(self, layer: str) -> bool:
        """False when the map is all zero: no positive evidence for the class at this layer."""
        return bool(self.raw[layer].max() > 0)

    def on_shared_scale(self) -> dict:
        """The maps on one colour scale across layers: every upsampled raw map over the largest value of all."""
        upsampled = {name: graph.upsample(raw, self.maps[name].shape) for name, raw in self.raw.items()}
        top = max(float(m.max()) for m in upsampled.values())
        return {name: (np.maximum(m, 0) / (top + _EPSILON)).astype(np.float32) for name, m in upsampled.items()}


class Explainer:
    """Explains one model. Compiles lazily, once per set of layers, and caches the graphs."""

    def __init__(self, model, preprocess=None, labels=None, output=None):
        self.model: Model = load_model(model, preprocess, labels, output=output)
        network = self.model.network
        self._spatial = {s.name: s for s in graph.spatial_layers(network, self.model.input_shape)}
        if not self._spatial:
            raise InputError("The model has no layer to explain: none gives a spatial (h, w > 1) map, and none "
                             "gives tokens that lie on the input's patch grid (a text model or a pooled vector cannot be laid on an image).")
        self.transformer = any(s.grid for s in self._spatial.values())
        self._default = None
        self._order = {name: index for index, name in enumerate(self._spatial)}  # graph order
        self._passes = {}
        self._lock = threading.Lock()
        self._probabilities = None
        self._masked_probability = None
        self._ordered_probability = None
        self._attention = False  # the compiled attention of a transformer's blocks, None when it has none

    @property
    def layers(self) -> list[str]:
        """Candidate layer names in graph order (nested ones as "outer/inner")."""
        return list(self._order)

    @property
    def default_layer(self) -> str:
        """A CNN's last spatial layer. A transformer's last layer whose patch tokens reach the score:
        with a head on the class token, the patch tokens after the last block's attention feed
        nothing (zero gradient), so this is the last block's first LayerNorm, as pytorch-grad-cam
        recommends; with a pooled or flattened head, the last layer of all."""
        if self._default is None:
            self._default = self._reaching_layer() if self.transformer else next(reversed(self._order))
        return self._default

    def _reaching_layer(self) -> str:
        x = self.model.preprocessed(np.random.default_rng(0).uniform(0, 255, (1, *self.model.input_shape)))
        # A pass of its own, not cached: explaining one layer through the every-layer pass would
        # run the backward pass through all blocks (2.4x a forward pass on ViT-B/16 instead of 1.1x).
        spatial = [self._spatial[name] for name in self.layers]
        step = graph.compile_pass(self.model.network, self.model.head, {s.name: s.layer for s in spatial},
                                  self.model.input_shape, {s.name: s.grid for s in spatial if s.grid})
        _, _, _, gradients = step(x, np.int32(-1))
        reaching = [name for name, g in zip(self.layers, gradients) if np.any(g.numpy() != 0)]
        return reaching[-1] if reaching else self.layers[-1]

    @property
    def blocks(self) -> int:
        """How many transformer blocks the model has (0 for a CNN)."""
        return max((s.block for s in self._spatial.values()), default=0)

    def describe(self, layer: str) -> str:
        """Where a layer sits, for a picker: "block 7 of 12 · 14×14 tokens", or "14×14×96" for a map."""
        spatial = self._spatial[self._check_layers([layer])[0]]
        h, w, channels = spatial.shape
        if not self.transformer:
            return f"{h}×{w}×{channels}"
        where = f"block {spatial.block} of {self.blocks}" if spatial.block else "patch embedding"
        return f"{where} · {h}×{w}{' tokens' if spatial.grid else ''}"

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def stage_ends(self, count: int = 4) -> list[str]:
        """The last layer of each of the deepest `count` resolutions: where the network's stages end.
        A resolution held by a single layer is a padding step, not a stage (MobileNetV2's 15x15).
        For a transformer, `count` block outputs spread over the depth, ending at the default layer."""
        if self.transformer:
            steps = self.conv_layers
            picks = np.linspace(0, len(steps) - 1, min(count, len(steps))).round().astype(int)
            return [steps[i] for i in sorted(set(picks))]
        stages = {}
        for spatial in self._spatial.values():
            stages.setdefault(spatial.shape[:2], []).append(spatial.name)
        real = [group for group in stages.values() if len(group) > 1] or list(stages.values())
        return [group[-1] for group in real[-count:]]

    @property
    def conv_layers(self) -> list[str]:
        """The steps of a walk through the network, ending at the default layer: a CNN's convolution
        layers in graph order (Conv2D, DepthwiseConv2D, SeparableConv2D, ...); a transformer's
        blocks, each by the last layer in it, up to the default layer's block."""
        default = self.default_layer
        if self.transformer:
            last = {}
            for name, s in self._spatial.items():
                last[s.block] = name
            until = self._spatial[default].block
            return [name for block, name in last.items() if block < until] + [default]
        convs = [name for name, s in self._spatial.items() if isinstance(s.layer, keras.layers.Conv2D)
                 or "Conv" in type(s.layer).__name__]
        return [name for name in convs if name != default] + [default]

    def find_classes(self, text: str) -> list[int]:
        """Classes whose label contains `text`, ignoring case, spaces, "_" and "-": "hot dog" finds
        "hotdog", "Egyptian cat" finds "Egyptian_cat"."""
        wanted = _squash(text)
        return [index for index, label in enumerate(self.labels) if wanted in _squash(label)]

    def layer_shape(self, layer: str) -> tuple:
        """(h, w, channels) of a layer's output."""
        return self._spatial[self._check_layers([layer])[0]].shape

    def class_index(self, text) -> int:
        """A class index from an index or a label (case and "_" vs " " ignored)."""
        labels = self.labels
        index = int(text) if isinstance(text, (int, np.integer)) else whole_number(text)
        if index is not None:
            if not 0 <= index < len(labels):
                raise InputError(f"Class {index} is out of range: the model has {plural(len(labels), 'class')} (0-{len(labels) - 1}).")
            return index
        wanted = _squash(text)
        for index, label in enumerate(labels):
            if _squash(label) == wanted:
                return index
        raise InputError(f"Unknown class '{text}': give a class index or one of the model's labels.")

    def predict(self, photo, top: int = 5) -> list[tuple[int, str, float]]:
        """The top classes as (index, label, probability)."""
        x = self.model.to_input(read_photo(photo))
        probabilities = self._probabilities_fn()(x)[0].numpy()
        order = np.argsort(-probabilities)[:top]
        return [(int(i), self.labels[i], float(probabilities[i])) for i in order]

    def explain(self, photo, layers=None, class_index=None, method="gradcam", counterfactual=False,
                progress=None, keep_activations=False, size=None, method_options=None):
        """Maps for each layer (default: the last spatial layer) from one forward and one backward pass.

        `counterfactual=True` maps what speaks against the class: ReLU of minus the weighted sum.
        `progress(fraction)` is called as Score-CAM works through the channels;
        `keep_activations=True` also returns each layer's activations (for teaching views);
        `size=(h, w)` upsamples the maps to that size instead of the photo's (small previews of many layers);
        `method_options` go to a method that takes some (attention rollout: `fusion`, `discard`).
        """
        started = time.perf_counter()
        if method not in METHODS:
            raise InputError(f"Unknown method '{method}': use one of {', '.join(METHODS)}.")
        photo = read_photo(photo)
        names = self._check_layers(layers)
        target = -1 if class_index is None else self.class_index(class_index)
        if METHODS[method].needs_attention:
            self._check_attention(names)

        x = self.model.to_input(photo)
        step, positions = self._pass(names)
        logits, target, activations, gradients = step(x, np.int32(target))
        activations = [activations[i] for i in positions]
        gradients = [gradients[i] for i in positions]
        target = int(target)
        passed = time.perf_counter()

        explanation = Explanation(target, self.labels[target], method, counterfactual)
        weigh = METHODS[method]
        probe, attention = None, None
        if weigh.needs_probe:
            probe = lambda maps: self._masked_probability_fn()(x, maps, np.int32(target)).numpy()  # noqa: E731
        if weigh.needs_attention:
            attention = [a.numpy() for a in self._attention_fn()(x)]
        for name, a, g in zip(names, activations, gradients):
            a, g = a[0].numpy(), g[0].numpy()
            evidence = Evidence(a, g, probe, progress or (lambda done: None))
            if weigh.needs_attention:
                evidence.attention, evidence.prefix = self._attention_until(name, attention), self._spatial[name].grid.prefix
                evidence.options = method_options
                pre_relu, weights = weigh(evidence), None  # the map itself: no channel weights
            else:
                weights = weigh(evidence)
                pre_relu = (weights * a).sum(axis=-1).astype(np.float32)
            explanation.weights[name] = weights
            if keep_activations:
                explanation.activations[name] = a
            explanation.pre_relu[name] = pre_relu
            explanation.raw[name] = np.maximum(-pre_relu if counterfactual else pre_relu, 0)
        weighed = time.perf_counter()

        for name, raw in explanation.raw.items():
            explanation.maps[name] = scale(graph.upsample(raw, size or photo.shape[:2]))
        done = time.perf_counter()
        explanation.timings = {
            "pass": passed - started,
            "weights": weighed - passed,
            "maps": done - weighed,
            "total": done - started,
        }
        return explanation

    def _check_layers(self, layers) -> list[str]:
        if layers is None:
            return [self.default_layer]
        if isinstance(layers, str):
            layers = [layers]
        names = []
        for name in layers:
            if name not in self._spatial:
                matches = [full for full in self._spatial if full.split("/")[-1] == name]
                if len(matches) != 1:  # a nested layer may be named without its model
                    raise InputError(
                        f"'{name}' is not a spatial layer of this model (one with an h x w output, h, w > 1); "
                        f"try {self.default_layer}."
                    )
                name = matches[0]
            if name not in names:
                names.append(name)
        if not names:
            raise InputError("No layer was given to explain.")
        return sorted(names, key=self._order.__getitem__)

    def ordered_probabilities(self, mixes, rank, class_index: int, chunk: int = 17) -> list[np.ndarray]:
        """The class's probability on inputs mixed from two network inputs, for each (first, second,
        counts) in `mixes`: for a count n, the n first pixels in `rank` order (an (h, w) int array,
        0 first) come from `first`, the rest from `second`. One array of probabilities per mix.

        Compiled batches of at most `chunk` inputs, two at a time from one queue for all mixes: like
        single passes, one batch does not keep both cores busy (measured: about 20% faster)."""
        probe = self._ordered_probability_fn()
        rank, target = tf.constant(np.asarray(rank, np.int32)), tf.constant(class_index, tf.int32)
        batches = []  # (mix number, first, second, counts)
        for number, (first, second, counts) in enumerate(mixes):
            first, second, counts = tf.constant(first), tf.constant(second), np.asarray(counts, np.int32)
            parts = np.array_split(counts, -(-len(counts) // chunk))  # equal sizes: no small last batch
            batches += [(number, first, second, part) for part in parts]

        def run(batch):
            _, first, second, counts = batch
            return probe(first, second, rank, tf.constant(counts), target)[0].numpy()  # frozen: outputs in a list

        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = list(pool.map(run, batches))
        return [np.concatenate([p for p, b in zip(parts, batches) if b[0] == number]) for number in range(len(mixes))]

    def warm(self) -> None:
        """Trace and run once what a first prediction and map at the default layer need."""
        zeros = np.zeros((1, *self.model.input_shape), np.float32)
        self._probabilities_fn()(zeros)
        self._pass([self.default_layer])[0](zeros, np.int32(-1))

    def prepare_all_layers(self) -> None:
        """Trace one pass over every layer, so switching layers never waits for a trace (the
        dashboard's choice). Each call then runs a full backward pass: about 3x a forward
        pass instead of about 1.1x, but interactive layer changes stay well under a second."""
        step, _ = self._pass(self.layers)
        step(np.zeros((1, *self.model.input_shape), np.float32), np.int32(-1))  # the first run also optimises the graph

    def prepare_metrics(self) -> None:
        """Freeze and run once the deletion/insertion probe (about 4 s for MobileNetV2 on 2 cores),
        so a first faithfulness curve does not wait for it."""
        image = np.zeros(self.model.input_shape, np.float32)
        self.ordered_probabilities([(image, image, [0])], np.zeros(self.model.input_size, np.int32), 0)

    def _pass(self, names: list[str]):
        """The compiled pass to use for `names`, and where each name sits in its outputs."""
        key = tuple(names)
        everything = tuple(self._order)
        with self._lock:
            if key not in self._passes and everything in self._passes:
                key = everything
            if key not in self._passes:
                targets = {name: self._spatial[name].layer for name in names}
                grids = {name: self._spatial[name].grid for name in names if self._spatial[name].grid}
                self._passes[key] = graph.compile_pass(self.model.network, self.model.head, targets,
                                                       self.model.input_shape, grids)
            return self._passes[key], [key.index(name) for name in names]

    def _probabilities_fn(self):
        with self._lock:
            if self._probabilities is None:
                self._probabilities = graph.compile_probabilities(self.model.network, self.model.head, self.model.input_shape)
            return self._probabilities

    def _ordered_probability_fn(self):
        probabilities = self._probabilities_fn()
        with self._lock:
            if self._ordered_probability is None:
                self._ordered_probability = graph.compile_ordered_probability(probabilities, self.model.input_shape)
            return self._ordered_probability

    @property
    def methods(self) -> list[str]:
        """The methods this model can be explained with: attention rollout needs a transformer whose
        blocks attend over all tokens (keras MultiHeadAttention, as in ViT and DeiT; not Swin's windows)."""
        return [name for name in METHODS if not METHODS[name].needs_attention or self._attention_fn() is not None]

    def _check_attention(self, names) -> None:
        if self._attention_fn() is None:
            raise InputError("Attention rollout needs a transformer whose blocks attend over all tokens with Keras "
                             "MultiHeadAttention (ViT, DeiT); this model has none (a CNN, or Swin's windowed attention).")
        for name in names:
            if not (self._spatial[name].grid and self._spatial[name].block):
                raise InputError(f"Attention rollout follows the tokens through the blocks: {name} is not a token "
                                 "layer inside a block; pick one from block 1 on.")

    def _attention_until(self, name: str, attention: list) -> list:
        """The attention of the blocks up to the layer's own."""
        return attention[: self._spatial[name].block]

    def _attention_fn(self):
        with self._lock:
            if self._attention is False:  # not looked for yet
                layers = graph.attention_layers(self.model.network, self.model.input_shape) if self.transformer else []
                self._attention = (graph.compile_attention(self.model.network, layers, self.model.input_shape)
                                   if layers and len(layers) == self.blocks else None)
            return self._attention

    def _masked_probability_fn(self):
        probabilities = self._probabilities_fn()
        with self._lock:
            if self._masked_probability is None:
                self._masked_probability = graph.compile_masked_probability(probabilities, self.model.input_shape)
            return self._masked_probability


def _squash(text) -> str:
    return "".join(ch for ch in str(text).lower() if ch not in " _-")


def scale(heatmap: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; an all-zero map stays zero (never NaN)."""
    low, high = heatmap.min(), heatmap.max()
    return ((heatmap - low) / (high - low + _EPSILON)).astype(np.float32)
