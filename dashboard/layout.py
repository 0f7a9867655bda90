"""Page furniture: the compact header with the drop zone and the share button, presenter mode's
and the light background's styles."""

import functools
import io

import segno
import streamlit as st

from dashboard import url_state
from dashboard.photos import UPLOAD

# Streamlit leaves about 6rem above the first element: on a 1280x720 projector the photo and the
# map must start above the fold, so the page begins right under the toolbar. The sidebar's buttons
# are three to a row (the gallery): with Streamlit's padding "astronaut" did not fit. On a phone the
# photo and its overlay stack: the overlay comes first, so the result is what a student sees.
# A photo far taller than wide (a 10 x 10,000 px strip) is letterboxed within the screen's height, like
# the overlay (overlay.css), instead of stretching the page to 190,000 px.
# The light background also re-themes the overlay component (its colours are Streamlit's theme variables).
COMPACT = """<style>
.block-container {padding-top: 3rem; padding-bottom: 1rem}
[data-testid="stMainBlockContainer"] h1 {padding: 0 0 .1rem 0 !important; font-size: 2rem !important}
[data-testid="stSidebar"] [data-testid="stButton"] button {padding-left: .3rem; padding-right: .3rem}
[data-testid="stSidebar"] [data-testid="stButton"] button p {font-size: .85rem}
[data-testid="stMainBlockContainer"] [data-testid="stImage"] img {max-height: 85vh; object-fit: contain}
@media (max-width: 640px) {.st-key-photo_and_overlay [data-testid="stHorizontalBlock"] {flex-direction: column-reverse}}
</style>"""
PRESENTING = """<style>
.block-container {padding-top: 3.2rem; max-width: 100%}
.present-line {font-size: 1.3rem; margin-bottom: .3rem}
.present-caption {font-size: 1.9rem; text-align: center; margin: .2rem 0 .4rem 0}
[data-testid="stMainBlockContainer"] [data-testid="stImage"] img {max-height: 66vh; object-fit: contain}
</style>"""
LIGHT = """<style>
.stApp, [data-testid="stHeader"], [data-testid="stBottomBlockContainer"] {background: #fafafa; color: #1b1b1b}
.stApp p, .stApp li, .stApp h1, .stApp h2, .stApp h3, .stApp h4, .stApp label, .stApp span,
[data-testid="stCaptionContainer"], [data-testid="stImageCaption"] {color: #1b1b1b}
[data-testid="stSidebar"] {background: #eceff3}
.stApp button[kind="secondary"], .stApp [data-testid="stPopover"] button, [data-testid="stFileUploaderDropzone"],
[data-testid="stFileUploaderDropzone"] button, .stApp [data-baseweb="select"] > div, .stApp input,
[data-testid="stExpander"] details {background: #e4e7ec !important; color: #1b1b1b !important; border-color: #c5cad3 !important}
.stApp [data-baseweb="select"] div, .stApp input::placeholder {color: #1b1b1b !important}
[data-testid="stBidiComponentIsolated"] {--st-text-color: #1b1b1b !important; --st-background-color: #fafafa !important;
  --st-secondary-background-color: #e4e7ec !important; --st-border-color: #c5cad3 !important}
</style>"""


def style(presenting: bool, light: bool) -> None:
    st.html(COMPACT + (PRESENTING if presenting else "") + (LIGHT if light else ""))


def header(presenting: bool):
    """Title and the drop zone side by side; returns (summary slot, drop zone, share slot)."""
    if presenting:
        return st.empty(), st.sidebar.container(), st.sidebar.container()
    title, drop = st.columns([3, 2], vertical_alignment="center")
    title.title("Grad-CAM Explorer")
    summary, share = title.columns([5, 2], vertical_alignment="center")
    return summary, drop, share


@functools.lru_cache(maxsize=64)  # drawn on every run, while the popover is closed too
def qr_png(address: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(address, error="m").save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def share_button(slot, photo_link: str) -> None:
    """The link to this view, and a QR code of it for phones."""
    with slot.popover("Share", icon=":material/qr_code_2:", width="stretch"):
        address = url_state.link()
        st.code(address, language=None, wrap_lines=True)
        st.image(qr_png(address), width=240)
        if photo_link == UPLOAD:
            st.caption("An uploaded photo cannot travel in a link: it stays on this server. "
                       "The link opens the same view on the cat sample.")
