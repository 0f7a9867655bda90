"""The view in the URL, so a shared link opens the same view: model, photo, layer, class, method,
counterfactual, opacity, colormap, the open tab, each compare view's picks and presenter mode.

Widget values live in st.session_state under the same keys. Streamlit forgets a widget's value
when a run does not draw it (a tab that is not open), so `keep_selections` re-assigns the
persistent ones at the top of every run.
"""

from urllib.parse import urlencode

import streamlit as st

# The sidebar's keys; each tab adds its own (dashboard.tabs), through `own`.
KEYS = ("model", "photo", "layer", "class", "method", "counterfactual", "opacity", "colormap", "tab", "present",
        "all_layers", "fusion", "discard")
# Selections that must survive runs in which their widget is not drawn (a tab that is not open; the
# sidebar's lower half while "Your own model" waits for its file).
PERSISTENT = ("all_layers", "present", "light", "counterfactual", "method", "opacity", "colormap", "fusion", "discard")


def own(keys: tuple, kept: tuple) -> None:
    """Add the tabs' keys: `keys` travel in the link, `kept` (a superset) survive closed tabs."""
    global KEYS, PERSISTENT
    KEYS = tuple(dict.fromkeys((*KEYS, *keys)))
    PERSISTENT = tuple(dict.fromkeys((*PERSISTENT, *kept)))


def keep_selections() -> None:
    for key in PERSISTENT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def from_link(key: str):
    """The value the page was opened with (read once per session), or None."""
    if "_opened_with" not in st.session_state:
        st.session_state["_opened_with"] = {k: st.query_params[k] for k in KEYS if k in st.query_params}
    return st.session_state["_opened_with"].get(key)


def choose(key: str, options, default, parse=str):
    """Seed a widget's session value from the link, or the default, when it is unset or no longer
    valid. `options` is a list of valid values or a test of validity."""
    valid = options if callable(options) else options.__contains__
    if key in st.session_state and valid(st.session_state[key]):
        return
    try:
        linked = parse(from_link(key)) if from_link(key) is not None else None
    except ValueError:
        linked = None
    st.session_state[key] = linked if linked is not None and valid(linked) else default


def flag(text: str) -> bool:
    return text in ("1", "true", "True")


def parse_list(parse):
    return lambda text: [parse(item) for item in text.split(",") if item]


def publish(**values) -> None:
    """Write the view into the address bar (lists as comma lists, booleans as 1/0)."""
    def text(value):
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value))
        return str(value)

    st.query_params.from_dict({key: text(value) for key, value in values.items() if value is not None})


def link() -> str:
    """The address of this view, to share."""
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(st.query_params.to_dict())}"


MOVED = "The server this page was on stopped: the one answering now reopened your view from its link."


def moved_here() -> bool:
    """True on the first run of a session the page asked to resume (its websocket names the session
    it had) on a server that never held it: behind a load balancer, its replica stopped. The page
    reruns with its own URL, so the view comes back from the link; an uploaded photo does not."""
    if "_seen" in st.session_state:
        return False
    st.session_state["_seen"] = True
    entries = st.context.headers.get("Sec-Websocket-Protocol", "").split(",")
    return len(entries) >= 3 and bool(entries[2].strip())

