"""Colour and blend cached maps; never calls the model, so it is cheap to redo on every slider move."""

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

COLORMAPS = ("jet", "viridis", "inferno", "turbo")


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 through a matplotlib colormap."""
    table = (matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return table[np.clip(heatmap * 255 + 0.5, 0, 255).astype(np.uint8)]


def blend(photo: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """(1 - opacity) * photo + opacity * colour(map), on the original photo."""
    colour = colorize(heatmap, colormap).astype(np.float32)
    mixed = (1.0 - opacity) * photo.astype(np.float32) + opacity * colour
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def outline(image: np.ndarray, mask: np.ndarray, colour=(255, 255, 255)) -> np.ndarray:
    """The image with the mask's border painted in `colour` (a ground-truth outline)."""
    from scipy import ndimage

    border = mask & ~ndimage.binary_erosion(mask)
    marked = image.copy()
    marked[border] = colour
    return marked


def mark_peak(image: np.ndarray, heatmap: np.ndarray, colour=(255, 255, 255), arm: int = 4) -> np.ndarray:
    """The image with a small cross on the map's maximum (the pointing game's guess)."""
    y, x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    marked = image.copy()
    marked[y, max(0, x - arm) : x + arm + 1] = colour
    marked[max(0, y - arm) : y + arm + 1, x] = colour
    return marked


def side_by_side(photo: np.ndarray, overlays: dict, title: str) -> Figure:
    """The seed's figure: the original, then one overlay per entry (panel title -> image)."""
    panels = [("original", photo), *overlays.items()]
    height, width = photo.shape[:2]
    figure = Figure(figsize=(4 * len(panels), 4 * height / width + 0.6), layout="constrained")
    for axes, (name, image) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        axes.imshow(image)
        axes.set_title(name)
        axes.axis("off")
    figure.suptitle(title)
    return figure


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def image_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
