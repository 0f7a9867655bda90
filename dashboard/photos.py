"""Where the photo comes from: a drop zone on the first screen, a gallery of samples, a drawn shape
(the shapes models' world, with ground truth) or a camera snapshot. Widgets only."""

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard import compute
from dashboard.demo import shapes
from dashboard.engine import InputError, read_photo
from dashboard.url_state import from_link

SAMPLES = {path.stem.replace("_", " "): path for path in sorted((Path(__file__).parents[1] / "assets" / "samples").glob("*.jpg"))}
DEFAULT_SAMPLE = "cat chelsea"
IMAGE_TYPES = ["png", "jpg", "jpeg", "heic", "heif", "avif", "bmp", "gif", "webp", "tif", "tiff"]
DRAWN = "drawn"
UPLOAD = "upload"  # an uploaded or camera photo: it cannot travel in a link


@dataclass
class Photo:
    name: str
    digest: str
    array: np.ndarray  # at working size (long side <= 1280 px)
    mask: np.ndarray | None = None  # the object's pixels, when we drew the photo ourselves
    data: bytes | None = None  # the file as given, for a full-size download
    link: str = UPLOAD  # how a link names this photo: "sample:<name>", "drawn:<seed>[:mark]" or "upload"

    def full_size(self) -> np.ndarray:
        return self.array if self.data is None else read_photo(self.data, max_side=None)


def _valid_source(value) -> bool:
    if value in (UPLOAD, DRAWN):
        return True
    return isinstance(value, str) and value.startswith("sample:") and value[7:] in SAMPLES


def _seed_from_link() -> None:
    """Once per session: a link's photo=sample:NAME picks the sample, photo=drawn:SEED[:mark] redraws
    that shape; anything else (an upload cannot travel) starts on the default sample."""
    if "photo_source" in st.session_state:
        return
    linked = from_link("photo") or ""
    if linked.startswith("drawn:"):
        seed, _, mark = linked[6:].partition(":")
        st.session_state["shape_seed"] = int(seed) if seed.isdigit() else 0
        st.session_state["with_mark"] = mark == "mark"
        linked = DRAWN
    st.session_state["photo_source"] = linked if _valid_source(linked) and linked != UPLOAD else f"sample:{DEFAULT_SAMPLE}"


def use(source: str) -> None:
    """Make `source` the photo ("sample:<name>" or "drawn"); a dropped file gives way."""
    st.session_state["photo_source"] = source
    st.session_state["drop_round"] = st.session_state.get("drop_round", 0) + 1  # a fresh, empty drop zone


def photo_input(drop_zone) -> Photo:
    """The photo to explain. `drop_zone` is the main-area container for the file drop."""
    _seed_from_link()
    drop_key = f"upload_{st.session_state.get('drop_round', 0)}"
    dropped = drop_zone.file_uploader("Drop a photo here", type=IMAGE_TYPES, key=drop_key,
                                      help="A photo dropped here is explained at once. It stays on this server.")
    uploaded = dropped is not None or st.session_state.get("camera") is not None
    _gallery(None if uploaded else st.session_state["photo_source"])
    with st.sidebar.expander("Camera"):
        snapshot = st.camera_input("Take a snapshot", key="camera", resolution="720p")
    for upload in (dropped, snapshot):
        if upload is not None:
            data = upload.getvalue()
            photo_digest = compute.digest(data)
            try:
                photo = Photo(upload.name, photo_digest, compute.photo(photo_digest, data), data=data)
            except InputError as error:
                st.error(f"{upload.name}: {error} Showing the sample photo instead.")
                continue
            note = compute.photo_note(photo_digest, data)
            if note:
                drop_zone.caption(f"{upload.name}: {note}")
            return photo
    source = st.session_state["photo_source"]
    if source == DRAWN:
        return _drawn_shape()
    name = source[7:] if source.startswith("sample:") else DEFAULT_SAMPLE
    data = SAMPLES[name].read_bytes()
    photo_digest = compute.digest(data)
    return Photo(name, photo_digest, compute.photo(photo_digest, data), data=data, link=f"sample:{name}")


def _gallery(shown: str | None) -> None:
    """Samples as thumbnails, one click each, then the drawn shape; `shown` (the source on screen,
    None for an upload) is highlighted."""
    st.sidebar.header("Photo")
    options = [f"sample:{name}" for name in SAMPLES] + [DRAWN]
    columns = [column for _ in range(0, len(options), 3) for column in st.sidebar.columns(3)]
    for column, option in zip(columns, options):
        if option == DRAWN:
            column.image(_drawn_thumbnail(), width="stretch")
        else:
            column.image(compute.thumbnail(SAMPLES[option[7:]]), width="stretch")
        title = "shape" if option == DRAWN else option[7:].split()[0]
        column.button(title, key=f"use_{option}", on_click=use, args=(option,), width="stretch",
                      type="primary" if option == shown else "secondary")


@functools.cache
def _drawn_thumbnail() -> np.ndarray:
    return shapes.draw(np.random.default_rng([0, 2026]), mark=False).image[::2, ::2]


def _drawn_shape() -> Photo:
    """A procedural sample (the shapes models' world) with its ground-truth mask."""
    st.session_state.setdefault("shape_seed", 0)
    left, right = st.sidebar.columns(2)
    if left.button("Draw a new one", key="draw"):
        st.session_state["shape_seed"] += 1
    with_mark = right.toggle("Corner mark", key="with_mark",
                             help="The mark whose colour the shortcut model learned instead of the shape.")
    seed = st.session_state["shape_seed"]
    sample = shapes.draw(np.random.default_rng([seed, 2026]), mark=with_mark)
    name = f"drawn {shapes.CLASSES[sample.label]} #{seed}"
    return Photo(name, compute.digest(sample.image.tobytes() + name.encode()), sample.image, sample.mask,
                 link=f"drawn:{seed}{':mark' if with_mark else ''}")
