"""The tabs, in the order they are shown. Each module declares its TITLE, the session keys it owns
(KEYS: carried in the link and kept when the tab is closed; KEPT: kept, not linked) and
draw(view, predictions); app.py and url_state read this list and nothing else."""

from dashboard.tabs import (compare_classes, compare_layers, compare_methods, explore, faithfulness, how_it_works,
                            through_the_layers)

TABS = [explore, through_the_layers, compare_layers, compare_classes, compare_methods, faithfulness, how_it_works]
TITLES = [tab.TITLE for tab in TABS]
KEYS = tuple(key for tab in TABS for key in tab.KEYS)
KEPT = tuple(key for tab in TABS for key in (*tab.KEYS, *getattr(tab, "KEPT", ())))
