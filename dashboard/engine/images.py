"""Decode untrusted images into the RGB array a viewer would show, at a working size.

Phone photos (4000x3000) and larger are decoded straight to a working size whose long side is at
most WORKING_SIDE pixels: JPEG decodes at 1/2, 1/4 or 1/8 scale (Pillow's draft), other formats are
reduced right after decoding. Maps, blends and figures then cost the same at any photo size. Pass
max_side=None for the full-size original (a full-size download).
"""

from pathlib import Path

import io

import numpy as np
import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError, plural

pillow_heif.register_heif_opener()  # iPhones save HEIC by default; Pillow itself reads AVIF

_SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"}  # what Image.reduce averages
WORKING_SIDE = 1280  # pixels on the long side: a projector's width; maps and overlays are drawn at this size


def read_photo(source, max_side: int | None = WORKING_SIDE) -> np.ndarray:
    """Bytes, a path, a PIL image or an array -> (H, W, 3) uint8, oriented as a viewer shows it, its
    long side at most `max_side` (None: full size)."""
    if isinstance(source, np.ndarray):
        return _bounded(_from_array(source), max_side)
    if isinstance(source, Image.Image):
        return _bounded(_to_rgb(source), max_side)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"There is no image file at {path}.")
        data = path.read_bytes()
    if not data:
        raise InputError("The image file is empty.")
    return _bounded(_to_rgb(_open(data, max_side)), max_side)


def frames_note(source) -> str | None:
    """For a file (bytes or path) with several pages (TIFF) or frames (GIF, WebP, HEIF): which one is explained."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source) as image:
            count = getattr(image, "n_frames", 1)
            kind = "page" if image.format == "TIFF" else "frame"
    except Exception:  # read_photo says what is wrong with the file
        return None
    return f"The file has {plural(count, kind)}: the first is explained." if count > 1 else None


def _bounded(photo: np.ndarray, max_side: int | None) -> np.ndarray:
    """The photo shrunk (aspect kept) so its long side is at most max_side."""
    height, width = photo.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return photo
    image = Image.fromarray(photo)
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image)


def _open(data: bytes, max_side: int | None = None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        # Image.open reads only the header: refuse huge images before decoding any pixels.
        width, height = image.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:
            raise InputError(
                f"The image is too large ({width}x{height} pixels; the limit is {limit:,} pixels)."
            )
        if max_side and max(width, height) > max_side:
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at the smallest scale still >= max_side
        image.seek(0)  # animated GIF/WebP: the first frame
        image.load()
        if max_side and max(image.size) > 2 * max_side and image.mode in _REDUCIBLE_MODES:
            image = image.reduce(max(image.size) // max_side)  # cheap box filter, before any colour conversion
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
        broken = np.count_nonzero(~np.isfinite(values))
        if broken:  # one NaN would otherwise turn the whole photo black
            raise InputError(f"The image has {plural(broken, 'pixel value')} that {'is' if broken == 1 else 'are'} "
                             "not a number (NaN or infinity): save it with finite values.")
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
