"""How much an input may ask for, measured from what it declares and refused before anything is allocated.

A small file can ask for a lot: a 20 KB model whose configuration wants a 4 GB Dense kernel, an HDF5
dataset that declares 2 GB and stores nothing, a 1 MB zip whose labels.txt inflates to 1 GB, a photo
10 px wide whose side-by-side figure would be 256,000 px tall. On a shared classroom server one such
file would take every session down; here each is refused with a sentence naming the limit.
"""

import re
from pathlib import Path

import h5py
import numpy as np
from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import StatelessScope

from .errors import InputError

MB = 1 << 20
LABELS_BYTES = 1 * MB  # a labels file; ImageNet-21k's 21,841 class names take 0.4 MB
LABELS_LINES = 100_000  # and its lines
CONFIG_BYTES = 16 * MB  # a model's JSON configuration; DenseNet121's, among the largest, is 0.3 MB
WEIGHTS_BYTES = 600 * MB  # a model's weights; VGG19, the largest model of the zoo, has 549 MB
ZIP_MEMBER_BYTES = WEIGHTS_BYTES + CONFIG_BYTES  # a zipped model file: its weights and its configuration
FIGURE_SIDE = 4000  # pixels: the longest side of the side-by-side figure
FIGURE_ASPECT = 4  # a figure panel is at most 4 times taller than wide, or wider than tall
LAYERS_PER_RUN = 16  # layers explained in one CLI run (each map is a working-size image)


def _mb(size: int) -> str:
    return f"{size / MB:,.0f} MB" if size >= MB else f"{size / 1024:,.0f} KB"


def check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise InputError(f"The {what} is {_mb(size)}: the limit is {_mb(limit)}.")


def read_file(path: Path, limit: int, what: str) -> bytes:
    """A file's bytes, refused unread when larger than `limit`."""
    check_size(path.stat().st_size, limit, f"{what} {path.name}")
    return path.read_bytes()


def read_member(archive, info, limit: int, what: str) -> bytes:
    """A zip member's bytes, refused from its declared inflated size before it is inflated. zipfile
    stops at the declared size, so a header that understates it cannot make this read more."""
    check_inflated(info.file_size, limit, f"{what} {info.filename}")
    return archive.read(info)


def check_inflated(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise InputError(f"The {what} inflates to {_mb(size)}: the limit is {_mb(limit)}.")


def check_labels_text(text: str, name: str) -> None:
    lines = len(text.splitlines())  # the text is already bounded by LABELS_BYTES
    if lines > LABELS_LINES:
        raise InputError(f"The labels file {name} has {lines:,} lines: the limit is {LABELS_LINES:,}.")


def check_hdf5(file: h5py.File, name: str) -> None:
    """Refuse links to other files before any is followed, and datasets whose declared shapes add up
    to more than the weights budget (HDF5 allocates nothing for a declared dataset until it is read)."""
    declared = 0
    links = []
    file.visititems_links(lambda path, link: links.append((path, link)))  # hard-link cycles are visited once
    for path, link in links:
        if isinstance(link, h5py.ExternalLink):
            raise InputError(f"The model file {name} was refused: it links to another file ({path}), which we do not open.")
        if isinstance(link, h5py.HardLink):
            item = file.get(path)
            if isinstance(item, h5py.Dataset):
                if item.external:
                    raise InputError(f"The model file {name} was refused: its dataset {path} is stored in another file.")
                declared += int(np.prod(item.shape, dtype=np.int64)) * item.dtype.itemsize
    if declared > WEIGHTS_BYTES:
        raise InputError(f"The model file {name} declares {_mb(declared)} of weights: the limit is {_mb(WEIGHTS_BYTES)}.")


def config_text(file: h5py.File, name: str) -> str | None:
    """The model_config attribute of an HDF5 model file, refused unread when over CONFIG_BYTES."""
    if "model_config" not in file.attrs:
        return None
    size = file.attrs.get_id("model_config").get_storage_size()
    if size > CONFIG_BYTES:
        raise InputError(f"The model file {name} has a {_mb(size)} configuration: the limit is {_mb(CONFIG_BYTES)}.")
    value = file.attrs["model_config"]
    return value.decode() if isinstance(value, bytes) else str(value)


def check_declared_weights(build, name: str) -> None:
    """Build the model its configuration describes without creating any weight (Keras defers
    variables created in a stateless scope), and refuse it when the weights would pass the budget."""
    registry = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    try:
        with StatelessScope(initialize_variables=False):
            network = build()
            declared = sum(int(np.prod(v.shape, dtype=np.int64)) * _itemsize(v.dtype) for v in network.weights)
    finally:  # the deferred variables are dropped, never created
        global_state.set_global_attribute("uninitialized_variables", registry)
    if declared > WEIGHTS_BYTES:
        raise InputError(f"The model file {name} asks for {_mb(declared)} of weights: the limit is {_mb(WEIGHTS_BYTES)}.")


def _itemsize(dtype) -> int:
    """Bytes per value of a Keras dtype name ("float32" -> 4, "bfloat16" -> 2, "bool" -> 1)."""
    bits = re.search(r"\d+", str(dtype))
    return max(1, int(bits.group()) // 8) if bits else 1


def figure_inches(height: int, width: int, panels: int, panel_inches: float = 4.0, dpi: int = 100) -> tuple:
    """(width, height) in inches of a figure of `panels` side by side, each as tall as the photo's aspect
    says within FIGURE_ASPECT, the whole at most FIGURE_SIDE pixels on its long side."""
    aspect = min(max(height / width, 1 / FIGURE_ASPECT), FIGURE_ASPECT)
    size = (panel_inches * panels, panel_inches * aspect + 0.6)
    scale = min(1.0, FIGURE_SIDE / dpi / max(size))
    return size[0] * scale, size[1] * scale
