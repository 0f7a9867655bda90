"""Colour and blend cached maps; never calls the model, so it is cheap to redo on every slider move."""

import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from . import limits

COLORMAPS = ("jet", "viridis", "inferno", "turbo")


def colormap_table(colormap: str) -> np.ndarray:
    """The colormap's 256 colours, (256, 3) uint8: the same table here and in the browser's blend."""
    return (matplotlib.colormaps[colormap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def levels(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> uint8 levels 0..255, the index into a colormap's table."""
    return np.clip(heatmap * 255 + 0.5, 0, 255).astype(np.uint8)


def colorize(heatmap: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 through a matplotlib colormap."""
    return colormap_table(colormap)[levels(heatmap)]


def blend(photo: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """(1 - opacity) * photo + opacity * colour(map), on the original photo (Pillow's blend: it works
    in 8 bits, several times faster than float arrays on a phone-size photo)."""
    colour = Image.fromarray(colorize(heatmap, colormap))
    return np.asarray(Image.blend(Image.fromarray(photo), colour, float(opacity)))


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


def marks_png(mask: np.ndarray, heatmap: np.ndarray) -> bytes:
    """The ground-truth outline and the map's peak in white on a transparent image (RGBA PNG), drawn
    over the browser's blend unblended."""
    marks = mark_peak(outline(np.zeros((*mask.shape, 4), np.uint8), mask, (255, 255, 255, 255)), heatmap,
                      (255, 255, 255, 255))
    return image_png(marks)


def side_by_side(photo: np.ndarray, overlays: dict, title: str) -> Figure:
    """The seed's figure: the original, then one overlay per entry (panel title -> image)."""
    panels = [("original", photo), *overlays.items()]
    figure = Figure(figsize=limits.figure_inches(*photo.shape[:2], len(panels)), layout="constrained")
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


DISPLAY_SIDE = 960  # pixels: a browser column is narrower; fewer bytes to encode, send and decode per step


def _display(image: np.ndarray, max_side: int) -> Image.Image:
    picture = Image.fromarray(image)
    picture.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return picture


def image_jpeg(image: np.ndarray, quality: int = 90, max_side: int = DISPLAY_SIDE) -> bytes:
    """For display: several times smaller and faster to make than a PNG of a photo."""
    buffer = io.BytesIO()
    _display(image, max_side).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def map_png(heatmap: np.ndarray, max_side: int = DISPLAY_SIDE) -> bytes:
    """The map as 8-bit grey levels at the size image_jpeg gives the photo it was made for, as PNG:
    what the browser's blend indexes the colormap with."""
    buffer = io.BytesIO()
    _display(levels(heatmap), max_side).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def colour_bar_figure(raw: np.ndarray, colormap: str) -> Figure:
    """The raw map at layer resolution, with its scale."""
    figure = Figure(figsize=(4.2, 3.4))  # no layout engine: it doubles the drawing time
    axes = figure.subplots()
    image = axes.imshow(raw, cmap=colormap, vmin=0, vmax=max(float(raw.max()), 1e-6))  # an empty map stays at 0
    axes.set_title(f"raw map, {raw.shape[0]}x{raw.shape[1]} (after ReLU)", fontsize=9)
    axes.axis("off")
    figure.colorbar(image, ax=axes, shrink=0.85)
    return figure


def enlarge(image: np.ndarray, height: int = 240) -> np.ndarray:
    """Nearest-neighbour enlargement, so a 7x7 map shows its cells instead of a blur."""
    factor = max(1, height // image.shape[0])
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def diverging(values: np.ndarray) -> np.ndarray:
    """Signed values as colours: blue below zero, red above, white at zero."""
    top = float(np.abs(values).max()) or 1.0
    return colorize((values / top + 1) / 2, "coolwarm")


def legend_strip(colormap: str, width: int = 512, height: int = 14) -> np.ndarray:
    """The colormap from 0 (left) to 1 (right), to explain the overlay's colours."""
    return colorize(np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1)), colormap)
