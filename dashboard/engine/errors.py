"""The one exception the engine raises for bad input."""


class InputError(ValueError):
    """A problem with what the user gave us. Its message is one sentence, shown as is."""


def plural(count: int, noun: str) -> str:
    """"1 class", "2 classes", "3 labels"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}{'es' if noun.endswith('s') else 's'}"
