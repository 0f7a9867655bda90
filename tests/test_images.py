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


def test_the_shared_cache_computes_once_for_simultaneous_askers_and_keeps_to_its_budget():
    import threading
    import time

    from dashboard.engine.cache import SizedCache

    cache, calls = SizedCache(budget_bytes=3_000), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return np.zeros(1_000, np.uint8)

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("same", slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(results) == 8 and all(r is results[0] for r in results)
    for key in range(5):  # 1000 bytes each: only the three most recent fit
        cache.get(key, lambda: np.zeros(1_000, np.uint8))
    assert cache.size <= 3_000
    cache.get(4, lambda: pytest.fail("recomputed a kept entry"))
    with pytest.raises(ZeroDivisionError):
        cache.get("broken", lambda: 1 / 0)
    assert cache.get("broken", lambda: "computed again") == "computed again"
