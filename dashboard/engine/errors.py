"""The one exception the engine raises for bad input, and the wording helpers its messages share."""

import re


class InputError(ValueError):
    """A problem with what the user gave us. Its message is one sentence, shown as is."""


def plural(count: int, noun: str) -> str:
    """"1 class", "2 classes", "3 labels"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}{'es' if noun.endswith('s') else 's'}"


def whole_number(text) -> int | None:
    """"12" or "-1" as an int; None for anything else. ASCII digits only: str.isdigit() also accepts
    "²" and "①", which int() refuses."""
    match = re.fullmatch(r"\s*(-?[0-9]+)\s*", str(text))
    return int(match.group(1)) if match else None
