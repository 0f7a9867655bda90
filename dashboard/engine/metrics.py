"""How well a map agrees with where the object is (when we know it): the pointing game and the
share of the map's energy inside the object's mask."""

import numpy as np
from scipy import ndimage

TOLERANCE = 4  # pixels: the paper's 15 px at 224, scaled to our 128 px images with their small objects


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray, tolerance: int = TOLERANCE) -> bool:
    """True when the map's maximum lies on the object (grown by `tolerance` pixels). An empty map misses."""
    if heatmap.max() <= 0:
        return False
    y, x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    grown = ndimage.binary_dilation(mask, iterations=tolerance) if tolerance else mask
    return bool(grown[y, x])


def energy_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's total inside the mask (0 for an empty map)."""
    total = float(heatmap.sum())
    return float(heatmap[mask].sum()) / total if total > 0 else 0.0


# Deletion and insertion (Petsiuk et al., RISE, BMVC 2018): pixels are taken away (or revealed) in the
# order of the map, in equal steps, on the model's input; a taken-away pixel shows a blurred copy of the
# photo instead. The curve is the class probability after each step; its area under the curve is the
# score (deletion: lower is better, insertion: higher is better).

STEPS = 50
CHUNK = 17  # inputs per compiled batch, two batches at a time: bounds memory (measured: +0.46 GB at peak on MobileNetV2)
BLUR_SIGMA = 5.0  # pixels at 224 px, as RISE's blurred baseline


def blurred(pixels: np.ndarray) -> np.ndarray:
    """(h, w, c) float pixels -> the same, Gaussian-blurred (not across channels)."""
    sigma = BLUR_SIGMA * pixels.shape[0] / 224
    return ndimage.gaussian_filter(pixels, sigma=(sigma, sigma, 0))


def ranks(saliency: np.ndarray) -> np.ndarray:
    """Each pixel's place from the most salient (0) to the least (ties in reading order), same shape."""
    order = np.argsort(-saliency.ravel(), kind="stable")
    rank = np.empty(order.size, np.int32)
    rank[order] = np.arange(order.size)
    return rank.reshape(saliency.shape)


def step_counts(pixels: int, steps: int = STEPS) -> np.ndarray:
    """How many pixels are taken after each of `steps` equal steps: 0 first, all last."""
    return np.ceil(np.arange(steps + 1) * pixels / steps).astype(np.int32)


def auc(curve) -> float:
    """Area under a curve sampled at equal steps over [0, 1]."""
    curve = np.asarray(curve, np.float64)
    return float((curve[1:] + curve[:-1]).sum() / (2 * (len(curve) - 1)))


def curves(explainer, photo: np.ndarray, saliency: np.ndarray, class_index: int, steps: int = STEPS,
           deletion_too: bool = True, baseline: float | None = None) -> dict:
    """Deletion and insertion curves of one map for one class, as batched forward passes in chunks.

    `saliency` is any (H, W) map (it is resized to the model's input); `deletion_too=False` gives the
    insertion curve only (half the cost); `baseline`, a pixel value (0..255), replaces the blurred copy
    with a constant (pixel flipping, as Quantus has it)."""
    model = explainer.model
    pixels = model.to_raw_input(photo)  # (h, w, c), 0..255, before preprocessing
    soft = blurred(pixels) if baseline is None else np.full_like(pixels, baseline)
    # Preprocessing acts on each pixel alone (scaling, channel means), so mixing pixels commutes with
    # it: preprocess the two images once, then mix network inputs.
    original, substitute = model.preprocessed(np.stack([pixels, soft]))
    rank = ranks(np.asarray(_resize(saliency, model.input_size)))
    counts = step_counts(rank.size, steps)

    if not deletion_too:
        [insertion] = explainer.ordered_probabilities([(original, substitute, counts)], rank, class_index, CHUNK)
        return {"insertion_curve": insertion.tolist(), "insertion_auc": auc(insertion)}
    # Insertion starts where deletion ends (all blurred) and ends where it starts (the photo): 100 inputs, not 102.
    deletion, inside = explainer.ordered_probabilities(
        [(substitute, original, counts), (original, substitute, counts[1:-1])], rank, class_index, CHUNK)
    insertion = np.concatenate([deletion[-1:], inside, deletion[:1]])
    return {"insertion_curve": insertion.tolist(), "insertion_auc": auc(insertion),
            "deletion_curve": deletion.tolist(), "deletion_auc": auc(deletion)}


def deleted_inputs(explainer, photo: np.ndarray, saliency: np.ndarray, fractions) -> list[np.ndarray]:
    """What the model is shown during deletion, at the given fractions of pixels taken (uint8 images)."""
    pixels = explainer.model.to_raw_input(photo)
    soft = blurred(pixels)
    rank = ranks(np.asarray(_resize(saliency, explainer.model.input_size)))[..., None]
    counts = step_counts(rank.size, 100)[[round(100 * f) for f in fractions]]
    return [np.clip(np.where(rank < count, soft, pixels), 0, 255).astype(np.uint8).squeeze() for count in counts]


def _resize(values: np.ndarray, size: tuple) -> np.ndarray:
    from .graph import upsample

    return upsample(values.astype(np.float32), size)


def baselines(photo: np.ndarray, seed: int = 0) -> dict:
    """Maps any method must beat, the photo's size: a centred Gaussian, a random map and Sobel edges."""
    height, width = photo.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    centre = np.exp(-(((y - height / 2) / (height / 4)) ** 2 + ((x - width / 2) / (width / 4)) ** 2) / 2)
    grey = photo.astype(np.float32).mean(axis=2)
    sobel = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
    random = np.random.default_rng(seed).random((height, width))
    return {"centre": centre.astype(np.float32), "random": random.astype(np.float32), "sobel": sobel.astype(np.float32)}


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; a map with no ranking (constant, e.g. all zero) counts as 0, never NaN."""
    a, b = np.ravel(a), np.ravel(b)
    if a.min() == a.max() or b.min() == b.max():
        return 0.0
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


# The sanity check (Adebayo et al., NeurIPS 2018): randomise the network's weights from the top layer
# down, cumulatively, in a copy; a map that explains the model must fall apart on the way, while a map
# that ignores the model (edges, say) does not.

def weight_groups(network, transformer_input=None) -> list[tuple[str, str, list]]:
    """(block, last layer, trainable variables), top (output) first. A CNN's layers are grouped by
    name: consecutive layers whose names share the part up to their first number ("block_16_expand",
    "block_16_project" -> "block_16"), or, without a number, their first two words
    ("expanded_conv_depthwise" -> "expanded_conv"). A transformer's (give its input shape as
    `transformer_input`) by block: head, block 12, ..., block 1, patch embedding."""
    import re

    if transformer_input is not None:
        from .graph import weights_by_block

        return weights_by_block(network, transformer_input)
    groups = []
    for layer in reversed(_weighted_layers(network)):
        match = re.match(r"^(.*?\d+)", layer.name)
        block = match.group(1) if match else "_".join(layer.name.split("_")[:2])
        if groups and groups[-1][0] == block:
            groups[-1][1:] = [layer.name, groups[-1][2] + list(layer.trainable_weights)]
        else:
            groups.append([block, layer.name, list(layer.trainable_weights)])
    return [tuple(group) for group in groups]


def _weighted_layers(network) -> list:
    found = []
    for layer in network.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model
            found += _weighted_layers(layer)
        elif layer.trainable_weights:
            found.append(layer)
    return found


def sanity(explainer, photo: np.ndarray, layer: str, method: str = "gradcam", class_index=None, seed: int = 0,
           progress=None) -> dict:
    """Cascading randomisation from the top, on a copy of the network (the cached model is never
    touched), and the map of a random other class. `method` may also be "sobel" (ignores the model).

    Returns {"map": the original map, "cascade": [{"randomised_from", "block", "rank_correlation", "map"}],
    "random_class": {"class_index", "rank_correlation"}}."""
    import keras

    from .explainer import Explainer
    from .models import Model

    original = explainer.explain(photo, layers=[layer], class_index=class_index, method=_model_method(method))
    target = original.class_index
    reference = _map_of(original, layer, method, photo)
    copy = keras.models.clone_model(explainer.model.network)
    copy.set_weights(explainer.model.network.get_weights())
    twin = Explainer(Model(copy, explainer.model.preprocess, explainer.labels, f"{explainer.model.name} (randomised)",
                           input_shape=explainer.model.input_shape))
    rng = np.random.default_rng(seed)
    groups = weight_groups(copy, explainer.model.input_shape if explainer.transformer else None)
    cascade = []
    for done, (block, last, variables) in enumerate(groups, 1):
        for variable in variables:
            values = variable.numpy()
            spread = float(values.std()) or 0.05
            variable.assign(rng.normal(0.0, spread, values.shape).astype(values.dtype))
        e = twin.explain(photo, layers=[layer], class_index=target, method=_model_method(method))
        current = _map_of(e, layer, method, photo)
        cascade.append({"randomised_from": last, "block": block,
                        "rank_correlation": rank_correlation(reference, current), "map": current})
        if progress:
            progress(done / len(groups))
    others = [index for index in range(len(explainer.labels)) if index != target]
    other = int(rng.choice(others))
    e = explainer.explain(photo, layers=[layer], class_index=other, method=_model_method(method))
    return {"map": reference, "cascade": cascade,
            "random_class": {"class_index": other,
                             "rank_correlation": rank_correlation(reference, _map_of(e, layer, method, photo))}}


def _model_method(method: str) -> str:
    return "gradcam" if method == "sobel" else method


def _map_of(explanation, layer, method, photo):
    if method == "sobel":
        return baselines(photo)["sobel"]
    return explanation.maps[layer]


def report(explainer, photo: np.ndarray, explanation, layer: str, sanity_check: bool = True) -> dict:
    """Everything above for one explained layer, in the CLI's --json --metrics form."""
    target = explanation.class_index
    result = curves(explainer, photo, explanation.maps[layer], target)
    result["baselines"] = {}
    for name, saliency in baselines(photo).items():
        scored = curves(explainer, photo, saliency, target)
        result["baselines"][name] = {"deletion_auc": scored["deletion_auc"], "insertion_auc": scored["insertion_auc"]}
    if sanity_check:
        checked = sanity(explainer, photo, layer, explanation.method, target)
        result["sanity"] = {
            "cascade": [{"randomised_from": step["randomised_from"], "rank_correlation": step["rank_correlation"]}
                        for step in checked["cascade"]],
            "random_class": checked["random_class"],
        }
    return result
