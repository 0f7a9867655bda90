"""Big photos made on the spot (no engine imports: the load script uses them too)."""

import numpy as np
from PIL import Image, ImageDraw


def phone_photo(path, seed=0, size=(4000, 3000)):
    """A phone-size JPEG with smooth content (a real photo compresses like this, not like noise)."""
    rng = np.random.default_rng(seed)
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.integers(0, size[0]), rng.integers(0, size[1])
        r = int(rng.integers(100, 900))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    image.save(path, "JPEG", quality=88)
    return path


def huge_png(path, side=9000):
    """A few kilobytes that decode to 9000x9000 pixels (under Pillow's 89 Mpx bomb limit)."""
    image = Image.new("RGB", (side, side), (90, 140, 200))
    ImageDraw.Draw(image).rectangle((2000, 2500, 6000, 7000), fill=(230, 60, 40))
    image.save(path, "PNG")
    return path
