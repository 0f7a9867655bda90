"""One dashboard session spoken in Streamlit's own protocol, with no browser: the load client's student.

Streamlit's page talks to the server over one websocket (/_stcore/stream) in protobuf messages that ship
inside the `streamlit` package: the page sends a BackMsg (`rerun_script` with the link's query string and
the widgets' values), the server answers with ForwardMsgs (`new_session`, one `delta` per element,
`script_finished`). The overlay is a component whose JSON names the photo and map media URLs; a student
has seen the heatmap once both are fetched. An upload is what the page does: ask for upload URLs
(`file_urls_request`), PUT the file with the XSRF token from the cookie, then rerun with the drop zone's
new value.
"""

import json
import time
import uuid
from dataclasses import dataclass, field

import requests
import websocket
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

DROP_ZONE = "Drop a photo here"


@dataclass
class Page:
    """What one script run put on the page: widgets by label, and the overlay's media URLs."""

    widgets: dict = field(default_factory=dict)  # label -> the widget's proto (id, options, ...)
    overlay_urls: list = field(default_factory=list)  # the first overlay's photo and its first map (if any)
    images: list = field(default_factory=list)  # every other picture's media URL (gallery, colour bar)
    errors: list = field(default_factory=list)
    notices: list = field(default_factory=list)  # toasts


class StreamlitSession:
    def __init__(self, base_url: str, timeout: float = 120, resume: "StreamlitSession | None" = None):
        """A new page; with `resume`, that page reconnecting (its cookies, and the session it had)."""
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self.http = resume.http if resume else requests.Session()
        self.http.get(f"{self.base_url}/_stcore/health", timeout=timeout).raise_for_status()  # sets the XSRF cookie
        self.xsrf = self.http.cookies.get("_streamlit_xsrf", "")
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        # The page passes its XSRF token and the session it wants back in the subprotocol list.
        protocols = ["streamlit", self.xsrf, resume.session_id if resume else ""]
        self.socket = websocket.create_connection(
            self.base_url.replace("http", "ws", 1) + "/_stcore/stream", timeout=timeout,
            subprotocols=[p for p in protocols if p] if not resume else protocols, origin=self.base_url, cookie=cookie)
        self.session_id = self.script_hash = None
        self.query = resume.query if resume else ""  # the page's URL query: the link to its view
        self.states: dict[str, WidgetState] = {}  # the widget values this page has set

    @property
    def replica(self) -> str | None:
        """The load balancer's affinity cookie, if there is one."""
        return self.http.cookies.get("replica")

    def close(self):
        self.socket.close()

    def _send(self, message: BackMsg):
        self.socket.send_binary(message.SerializeToString())

    def _receive(self) -> ForwardMsg:
        message = ForwardMsg()
        message.ParseFromString(self.socket.recv())
        if message.WhichOneof("type") == "page_info_changed":
            self.query = message.page_info_changed.query_string
        if message.WhichOneof("type") == "new_session":
            self.session_id = message.new_session.initialize.session_id or self.session_id
            self.script_hash = message.new_session.main_script_hash
        return message

    def run(self, query: str | None = None, **changed: WidgetState) -> Page:
        """Rerun the script (the first run opens the page, with `query` or the page's own) and read
        its elements until it finishes."""
        self.states.update(changed)
        message = BackMsg()
        message.rerun_script.query_string = self.query if query is None else query
        message.rerun_script.page_script_hash = self.script_hash or ""
        message.rerun_script.widget_states.widgets.extend(self.states.values())
        self._send(message)
        page = Page()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            reply = self._receive()
            kind = reply.WhichOneof("type")
            if kind == "script_finished":
                if reply.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    page = Page()  # the script asked for a rerun (st.rerun): its next run is the page
                    continue
                if reply.script_finished != ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    return page
            if kind == "delta" and reply.delta.WhichOneof("type") == "new_element":
                self._read_element(reply.delta.new_element, page)
        raise TimeoutError("the script did not finish")

    @staticmethod
    def _read_element(element, page: Page):
        kind = element.WhichOneof("type")
        if kind == "bidi_component" and not page.overlay_urls:
            data = json.loads(element.bidi_component.json or "{}")
            maps = [p["map"] for p in data.get("panels", []) if p.get("map")]
            if data.get("photo"):  # no map where nothing counts for the class: the page says so instead
                page.overlay_urls = [data["photo"], *maps[:1]]
        elif kind in ("selectbox", "file_uploader", "slider", "radio", "checkbox", "toggle"):
            widget = getattr(element, kind)
            page.widgets[widget.label] = widget
        elif kind == "alert" and element.alert.format == 1:  # ERROR
            page.errors.append(element.alert.body)
        elif kind == "imgs":
            page.images.extend(image.url for image in element.imgs.imgs if image.url)
        elif kind == "toast":
            page.notices.append(element.toast.body)
        elif kind == "exception":
            page.errors.append(element.exception.message)

    def fetch(self, urls) -> int:
        """GET each media URL as the page's canvas does; returns the bytes received."""
        received = 0
        for url in urls:
            reply = self.http.get(self.base_url + url if url.startswith("/") else url, timeout=self.timeout)
            reply.raise_for_status()
            received += len(reply.content)
        return received

    def choose(self, page: Page, label: str, option: str) -> Page:
        """Pick an option of a selectbox, as a click in the page would."""
        widget = page.widgets[label]
        return self.run(**{widget.id: WidgetState(id=widget.id, string_value=option)})

    def upload(self, page: Page, name: str, data: bytes, label: str = DROP_ZONE) -> Page:
        widget = page.widgets[label]
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        self._send(request)
        while True:
            reply = self._receive()
            if reply.WhichOneof("type") == "file_urls_response":
                urls = reply.file_urls_response.file_urls[0]
                break
        self.http.put(self.base_url + urls.upload_url if urls.upload_url.startswith("/") else urls.upload_url,
                      files={"file": (name, data)}, headers={"X-Xsrftoken": self.xsrf},
                      timeout=self.timeout).raise_for_status()
        state = WidgetState(id=widget.id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        return self.run(**{widget.id: state})
