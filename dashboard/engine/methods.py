"""CAM methods. Each is a small function that weighs a layer's activations A (h, w, c);
the shared machinery then forms sum_k weights_k * A_k. Weights are per channel (c,)
or, for HiResCAM and Layer-CAM, per position and channel (h, w, c).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .tokens import rollout

SCORECAM_CHUNK = 64  # masked inputs per forward batch: bounds Score-CAM's memory


@dataclass
class Evidence:
    activations: np.ndarray  # A, (h, w, c)
    gradients: np.ndarray  # d y_c / d A, same shape; y_c is the score before softmax
    # For methods that declare `probe`: (n, h, w) maps -> class probability with each map masking the input.
    masked_probability: Callable[[np.ndarray], np.ndarray] | None
    progress: Callable[[float], None] = lambda done: None
    # For methods that declare `attention`: each block's attention (heads, T, T) up to the layer's
    # block, how many prefix tokens come before the patches, and the method's options.
    attention: list | None = None
    prefix: int = 0
    options: dict | None = None


def needs(*, slow: bool = False, probe: bool = False, attention: bool = False):
    """What a method declares about itself: `slow`, it runs the model once per channel (seconds
    per map, so views over many layers or networks use Grad-CAM in its place); `probe`, it calls
    `Evidence.masked_probability`; `attention`, it reads a transformer's attention and gives the
    map itself, (h, w), instead of weights for the activations."""
    def declare(method):
        method.slow, method.needs_probe, method.needs_attention = slow, probe, attention
        return method
    return declare


@needs()
def gradcam(ev: Evidence) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): alpha_k = spatial mean of the gradient."""
    return ev.gradients.mean(axis=(0, 1))


@needs()
def gradcam_plus_plus(ev: Evidence) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al., 2018), eq. 19 as printed (as pytorch-grad-cam has it):
    alpha = g^2 / (2 g^2 + sum(A) g^3), weight = sum alpha * ReLU(g).

    The authors' code (and tf-keras-vis) also divides alpha by its spatial sum. That sum runs
    over positions where 2 + sum(A) g is near zero, so at early layers it swings with float
    noise (we measured r 0.70 between eager and compiled gradients at block_6_expand_relu);
    without it alpha stays in (0, 1/2] wherever the ReLU lets g through."""
    g, a = ev.gradients, ev.activations
    g2 = g**2
    denominator = 2 * g2 + a.sum(axis=(0, 1)) * g**3
    alpha = g2 / np.where(g2 == 0, 1.0, denominator)
    return (alpha * np.maximum(g, 0)).sum(axis=(0, 1))


@needs()
def hirescam(ev: Evidence) -> np.ndarray:
    """HiResCAM (Draelos & Carin, 2020): the gradient itself, position by position."""
    return ev.gradients


@needs()
def xgradcam(ev: Evidence) -> np.ndarray:
    """XGrad-CAM (Fu et al., 2020): gradients averaged with the activations as weights."""
    a = ev.activations
    return (ev.gradients * a).sum(axis=(0, 1)) / (a.sum(axis=(0, 1)) + 1e-7)


@needs()
def layercam(ev: Evidence) -> np.ndarray:
    """Layer-CAM (Jiang et al., 2021): the positive gradient, position by position."""
    return np.maximum(ev.gradients, 0)


@needs()
def eigencam(ev: Evidence) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin, 2020): the first principal direction of A over positions
    (no gradients, no class). SVD fixes it only up to sign: point it along the activations."""
    flat = ev.activations.reshape(-1, ev.activations.shape[-1])
    direction = np.linalg.svd(flat, full_matrices=False)[2][0]
    return direction if (flat @ direction).sum() >= 0 else -direction


@needs(slow=True, probe=True)
def scorecam(ev: Evidence) -> np.ndarray:
    """Score-CAM (Wang et al., 2020): a channel's weight is the class probability when only
    that channel's upsampled, 0..1-scaled activation lets the input through."""
    maps = np.moveaxis(ev.activations, -1, 0)  # (c, h, w)
    weights = []
    for start in range(0, len(maps), SCORECAM_CHUNK):
        weights.append(ev.masked_probability(maps[start : start + SCORECAM_CHUNK]))
        ev.progress(min(1.0, (start + SCORECAM_CHUNK) / len(maps)))
    return np.concatenate(weights)


@needs(attention=True)
def attention_rollout(ev: Evidence) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): how much of each patch flows into the class token
    through the blocks' attention and residual paths (see tokens.rollout). It reads no gradient,
    so it is the same for every class. Options: `fusion` "mean" or "max" over heads, `discard`
    the fraction of the weakest attention links dropped per block (0.9 keeps the strongest 10%)."""
    options = {"fusion": "mean", "discard": 0.9, **(ev.options or {})}
    flow = rollout(ev.attention, options["fusion"], options["discard"], ev.prefix)
    return flow.reshape(ev.activations.shape[:2]).astype(np.float32)


METHODS = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "hirescam": hirescam,
    "xgradcam": xgradcam,
    "layercam": layercam,
    "eigencam": eigencam,
    "scorecam": scorecam,
    "rollout": attention_rollout,
}
TITLES = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM",
    "layercam": "Layer-CAM",
    "eigencam": "Eigen-CAM",
    "scorecam": "Score-CAM",
    "rollout": "Attention rollout",
}
SLOW = frozenset(name for name, method in METHODS.items() if method.slow)
ATTENTION = frozenset(name for name, method in METHODS.items() if method.needs_attention)
