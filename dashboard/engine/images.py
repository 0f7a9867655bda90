"""Decode untrusted images into the RGB array a viewer would show."""

from pathlib import Path

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def read_photo(source) -> np.ndarray:
    """Bytes, a path, a PIL image or an array -> (H, W, 3) uint8, oriented as a viewer shows it."""
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"There is no image file at {path}.")
        data = path.read_bytes()
    if not data:
        raise InputError("The image file is empty.")
    return _to_rgb(_open(data))


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        # Image.open reads only the header: refuse huge images before decoding any pixels.
        width, height = image.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:
            raise InputError(
                f"The image is too large ({width}x{height} pixels; the limit is {limit:,} pixels)."
            )
        image.seek(0)  # animated GIF/WebP: the first frame
        image.load()
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(
            f"The image is too large (over {Image.MAX_IMAGE_PIXELS:,} pixels)."
        ) from None
    except UnidentifiedImageError:
        raise InputError("The file is not an image format we can read.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(f"The image could not be decoded (truncated or corrupt: {error}).") from None
    return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        return _from_array(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # A viewer shows transparent pixels over a background: use white.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InputError(f"An image array must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError("The image has no pixels.")
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        top = values.max() if values.size else 0
        # Floats in [0, 1], or 16-bit values, are stretched to 0..255; anything in 0..255 is kept.
        scale = 255.0 if top <= 1.0 and array.dtype.kind == "f" else (255.0 / 65535.0 if top > 255 else 1.0)
        if top > 65535:
            scale = 255.0 / top
        array = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.shape[-1] == 4:
        return _to_rgb(Image.fromarray(array, "RGBA"))
    return np.ascontiguousarray(array)
