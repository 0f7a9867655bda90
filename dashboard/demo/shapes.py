"""A procedural image dataset where we know where the evidence is.

Each image is 128x128: one object (circle, square, triangle, star or cross) of random size, colour,
rotation and position, on a textured, noisy background with distractor clutter (lines and dots that
are none of the classes). Every image comes with the object's mask. Everything is drawn from a seed,
so the same seed gives the same images, bit for bit.

The shortcut variant adds a small mark in the top-left corner whose colour tells the class, the way
the Grad-CAM paper's biased classifier learned from cues that are not the object.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ("circle", "square", "triangle", "star", "cross")
SIZE = 128
MARK = (2, 2, 10, 10)  # x0, y0, x1, y1 of the shortcut mark, top-left corner
MARK_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))


@dataclass
class Sample:
    image: np.ndarray  # (SIZE, SIZE, 3) uint8
    mask: np.ndarray  # (SIZE, SIZE) bool, the object's pixels
    label: int
    box: tuple  # x0, y0, x1, y1 of the object, inclusive-exclusive


def outline(kind: str, centre, radius: float, angle: float) -> list:
    """The object's polygon (a circle is a 64-gon), rotated by `angle` radians."""
    if kind == "circle":
        points = [(np.cos(t), np.sin(t)) for t in np.linspace(0, 2 * np.pi, 64, endpoint=False)]
    elif kind == "square":
        points = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
    elif kind == "triangle":
        points = [(np.cos(t), np.sin(t)) for t in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
    elif kind == "star":
        points = [((1.0 if i % 2 == 0 else 0.45) * np.cos(t), (1.0 if i % 2 == 0 else 0.45) * np.sin(t))
                  for i, t in enumerate(np.pi / 2 + np.arange(10) * np.pi / 5)]
    else:  # cross
        a, b = 0.3, 1.0
        points = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a), (-a, -a)]
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return [tuple(centre + radius * rotation @ np.array(p)) for p in points]


def _background(rng) -> Image.Image:
    # Smooth texture: coarse random colours blurred up, plus fine noise.
    coarse = rng.integers(40, 216, (8, 8, 3), dtype=np.uint8)
    texture = Image.fromarray(coarse).resize((SIZE, SIZE), Image.BICUBIC).filter(ImageFilter.GaussianBlur(4))
    return texture


def _clutter(draw: ImageDraw.ImageDraw, rng) -> None:
    for _ in range(rng.integers(3, 8)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            x0, y0, x1, y1 = (int(v) for v in rng.integers(0, SIZE, 4))
            draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))
        else:
            x, y, r = int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)), int(rng.integers(1, 4))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def draw(rng: np.random.Generator, label: int | None = None, mark: bool | int = False, noise: float = 12.0,
         clutter: bool = True, background=None) -> Sample:
    """One sample. `mark`: False, True (the class's own colour) or a class index whose colour to use."""
    label = int(rng.integers(len(CLASSES))) if label is None else label
    image = _background(rng) if background is None else Image.new("RGB", (SIZE, SIZE), background)
    canvas = ImageDraw.Draw(image)
    if clutter:
        _clutter(canvas, rng)
    radius = float(rng.uniform(14, 30))
    centre = rng.uniform(radius + 12, SIZE - radius - 2, 2)  # clear of the corner where the mark goes
    polygon = outline(CLASSES[label], centre, radius, float(rng.uniform(0, 2 * np.pi)))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    canvas.polygon(polygon, fill=colour)
    silhouette = Image.new("1", (SIZE, SIZE), 0)
    ImageDraw.Draw(silhouette).polygon(polygon, fill=1)
    if mark is not False:
        canvas.rectangle([MARK[0], MARK[1], MARK[2] - 1, MARK[3] - 1], fill=MARK_COLOURS[label if mark is True else mark])
    pixels = np.asarray(image, dtype=np.float32)
    if noise:
        pixels = pixels + rng.normal(0, noise, pixels.shape)
    mask = np.asarray(silhouette, dtype=bool)
    ys, xs = np.nonzero(mask)
    return Sample(np.clip(pixels, 0, 255).round().astype(np.uint8), mask, label,
                  (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


def dataset(seed: int, count: int, mark: str = "none"):
    """(images, labels, masks). `mark`: "none", "class" (colour tells the class: the shortcut) or
    "random" (a mark of a random class's colour: present but uninformative)."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        label = int(rng.integers(len(CLASSES)))
        chosen = {"none": False, "class": True, "random": int(rng.integers(len(CLASSES)))}[mark]
        samples.append(draw(rng, label, chosen))
    return (np.stack([s.image for s in samples]), np.array([s.label for s in samples]),
            np.stack([s.mask for s in samples]))
