"""Locust students for the dashboard, speaking Streamlit's protocol (tests/streamlit_session.py).

Each student opens a fresh session with a link's query string and waits for the first overlay's
photo and map; then changes the layer (a rerun, a new map fetched) and, with LOAD_UPLOADS set to a
folder, drops one of its photos. Timings reach Locust as requests named "open", "layer" and
"upload" (milliseconds to the overlay's pixels being in hand). Run by bench/protocol_load.py.
"""

import itertools
import os
import time
from pathlib import Path

from locust import User, between, events, task

from streamlit_session import StreamlitSession

QUERY = os.environ.get("LOAD_QUERY", "photo=sample:cat+chelsea&layer=block_16_expand")  # a teacher's link
LAYERS = ("block_15_project · 7×7", "block_14_project · 7×7", "Conv_1 · 7×7", "block_13_project · 7×7")
UPLOADS = sorted(Path(os.environ["LOAD_UPLOADS"]).iterdir()) if os.environ.get("LOAD_UPLOADS") else []
_turns = itertools.count()  # spreads the students over the layers and photos


def _timed(name: str, step):
    """Run `step`, report it to Locust as a request named `name`; returns its result (None on failure)."""
    start = time.perf_counter()
    try:
        result, size = step()
        error = None
    except Exception as failure:  # reported, not raised: one broken session must not stop the class
        result, size, error = None, 0, failure
    events.request.fire(request_type="streamlit", name=name, response_time=(time.perf_counter() - start) * 1000,
                        response_length=size, exception=error, context={})
    return result


def _overlay(session: StreamlitSession, page):
    """The page, and the bytes of its overlay's photo and map once fetched; an error without them."""
    if page.errors or not page.overlay_urls:
        raise RuntimeError(f"no overlay: {page.errors}")
    return page, session.fetch(page.overlay_urls)


class Student(User):
    wait_time = between(2, 4)  # a student looks at the map before the next change

    @task
    def lesson(self):
        sessions = []

        def open_page():  # from the connection on, as a browser's page: its other pictures too
            sessions.append(StreamlitSession(self.host))
            page, size = _overlay(sessions[0], sessions[0].run(QUERY))
            return page, size + sessions[0].fetch(page.images)

        try:
            page = _timed("open", open_page)
            if page is None:
                return
            session = sessions[0]
            self.wait()
            layer = LAYERS[next(_turns) % len(LAYERS)]
            page = _timed("layer", lambda: _overlay(session, session.choose(page, "Layer", layer)))
            if page is not None and UPLOADS:
                self.wait()
                photo = UPLOADS[next(_turns) % len(UPLOADS)]
                # Bytes after the image's end change its digest, not its pixels: every upload is computed anew.
                data = photo.read_bytes() + os.urandom(16)
                _timed("upload", lambda: _overlay(session, session.upload(page, photo.name, data)))
        finally:
            for session in sessions:
                session.close()
