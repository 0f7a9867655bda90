"""Untrusted image decoding."""

import io

import numpy as np
import pytest
from PIL import Image

from dashboard.engine import InputError, read_photo


def _png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_transparent_pixels_show_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert (read_photo(_png(image)) == 255).all()


def test_sixteen_bit_keeps_its_range():
    deep = Image.fromarray(np.array([[0, 65535]], np.uint16))
    photo = read_photo(_png(deep))
    assert photo.shape == (1, 2, 3) and photo[0, 0, 0] == 0 and photo[0, 1, 0] == 255


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to view
    buffer = io.BytesIO()
    Image.new("RGB", (30, 10)).save(buffer, "JPEG", exif=exif)
    assert read_photo(buffer.getvalue()).shape == (30, 10, 3)


def test_arrays_and_pil_images_pass_through():
    array = np.random.default_rng(0).integers(0, 255, (5, 6, 3), np.uint8)
    assert (read_photo(array) == array).all()
    assert (read_photo(Image.fromarray(array)) == array).all()
    assert read_photo(np.ones((5, 6), np.float32)).max() == 255


def test_pixel_limit_is_checked_before_decoding(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InputError, match="too large"):
        read_photo(_png(Image.new("RGB", (11, 10))))
    assert read_photo(_png(Image.new("RGB", (10, 10)))).shape == (10, 10, 3)


def test_blend_is_the_alpha_mix_of_photo_and_colour():
    from dashboard.engine.render import blend, colorize

    rng = np.random.default_rng(5)
    photo = rng.integers(0, 255, (30, 40, 3), np.uint8)
    heat = rng.random((30, 40)).astype(np.float32)
    for opacity in (0.0, 0.35, 1.0):
        expected = (1 - opacity) * photo + opacity * colorize(heat, "viridis").astype(np.float64)
        assert np.abs(blend(photo, heat, opacity, "viridis") - expected).max() <= 1.0
