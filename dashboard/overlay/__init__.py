"""The overlay as a Streamlit component (st.components.v2): the browser blends the photo and the map
on a canvas, so opacity, colormap, "Original" and the layer scrubber follow the hand with no server
round trip. The server sends the photo (JPEG), each map (8-bit PNG) and the colormaps' 256-entry
tables once; the component reports the final opacity and colormap (and the scrubber's layer), which
land in session state under the sidebar's keys, so the link keeps carrying the view."""

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit import runtime

from dashboard.engine.render import COLORMAPS, colormap_table

HERE = Path(__file__).parent
_component = st.components.v2.component(
    "gradcam_overlay", js=(HERE / "overlay.js").read_text(), css=(HERE / "overlay.css").read_text()
)
TABLES = {name: colormap_table(name).ravel().tolist() for name in COLORMAPS}


@dataclass
class Display:
    """The session's opacity and colormap, one object for the whole session: a download built later
    (outside any script run) reads the value the overlay last reported, not the one of the run that
    drew its button."""

    opacity: float = 0.5
    colormap: str = "jet"


def display() -> Display:
    """This session's Display, in step with the session keys "opacity" and "colormap"."""
    state = st.session_state
    shown = state.setdefault("_display", Display())
    shown.opacity, shown.colormap = state["opacity"], state["colormap"]
    return shown


@dataclass(frozen=True)
class Panel:
    """One overlay: its map (an 8-bit PNG at the photo's size; None shows the photo as it is)."""

    map_png: bytes | None
    caption: str
    title: str = ""  # the scrubber's line for this step
    marks_png: bytes | None = None  # drawn on top, unblended (a ground-truth outline)


def _url(data: bytes | None, mimetype: str, where: str) -> str | None:
    """A media URL for the bytes: content-addressed, so the browser's copy stays valid across reruns."""
    if data is None:
        return None
    return runtime.get_instance().media_file_mgr.add(data, mimetype, where)


def show(key: str, photo_jpeg: bytes, panels: list[Panel], *, columns: int = 1, steps: list[str] | None = None,
         step_key: str | None = None, large: bool = False, page_follows: bool = False) -> None:
    """Overlays of one photo with one shared set of controls. With `steps` (one name per panel) the
    panels are shown one at a time, with a Layer slider and Play; `step_key` holds the chosen name.

    The component lives in a fragment: its report reruns only the fragment (and the link), not the
    page. A new colormap reruns the page, whose colour bar uses it; so does a new opacity with
    `page_follows` (the page shows overlays blended on the server too)."""
    opacity, colormap = st.session_state["opacity"], st.session_state["colormap"]
    urls = {"photo": _url(photo_jpeg, "image/jpeg", f"{key}-photo"),
            "panels": [{"map": _url(p.map_png, "image/png", f"{key}-{i}"), "caption": p.caption, "title": p.title,
                        "marks": _url(p.marks_png, "image/png", f"{key}-{i}-marks")} for i, p in enumerate(panels)]}

    @st.fragment
    def mount():
        state = st.session_state
        if state["colormap"] != colormap or (page_follows and state["opacity"] != opacity):
            st.rerun()
        data = {**urls, "columns": columns, "opacity": state["opacity"], "colormap": state["colormap"], "frame": None,
                "large": large, "tables": TABLES}
        if steps:
            data["frame"] = steps.index(state[step_key]) if state.get(step_key) in steps else len(steps) - 1
        _component(key=key, data=data, on_view_change=lambda: _adopt(key, steps, step_key))

    mount()


def _adopt(key: str, steps: list[str] | None, step_key: str | None) -> None:
    """The component's final choice becomes the sidebar's state, and the link's."""
    view = (st.session_state[key] or {}).get("view") or {}
    opacity, colormap, frame = view.get("opacity"), view.get("colormap"), view.get("frame")
    shown = st.session_state.get("_display") or Display()
    if isinstance(opacity, (int, float)) and 0 <= opacity <= 1:
        st.session_state["opacity"] = shown.opacity = round(float(opacity), 2)
        st.query_params["opacity"] = str(shown.opacity)
    if colormap in COLORMAPS:
        st.session_state["colormap"] = st.query_params["colormap"] = shown.colormap = colormap
    if steps and isinstance(frame, int) and 0 <= frame < len(steps):
        st.session_state[step_key] = st.query_params[step_key] = steps[frame]
