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
